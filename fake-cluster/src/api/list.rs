//! Reading a collection: a list (label and field selectors, `limit` and `continue`, tables)
//! and a watch.

use crate::json::{Value, json};
use http::{Response, header};

use super::route::Target;
use super::{ApiServer, ResponseBody, json_response, list_body};
use crate::query::{Query, decode_continue, encode_continue};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::meta_str;
use crate::{conversion, table, watch};

impl ApiServer {
    pub(super) fn list(
        &self,
        t: &Target,
        q: &Query,
        table: Option<table::IncludeObject>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let labels = LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?;
        let fields =
            FieldSelector::parse(&t.def, q.get("fieldSelector").map_or("", String::as_str))?;
        let (items, rv) = self.store.list(
            &self.store.resources().storage_of(&t.def),
            t.namespace.as_deref(),
        );
        let start_after = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let limit = q
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let mut selected = Vec::new();
        let mut remaining = 0usize;
        for item in items.iter() {
            if let Some(s) = &start_after
                && item_key(item) <= *s
            {
                continue;
            }
            if !(labels.matches(item) && fields.matches(item)) {
                continue;
            }
            if limit.is_some_and(|l| selected.len() >= l) {
                remaining += 1;
            } else {
                selected.push(item.clone());
            }
        }
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if remaining > 0
            && let Some(last) = selected.last()
        {
            metadata["continue"] = json!(encode_continue(&item_key(last)));
            metadata["remainingItemCount"] = json!(remaining);
        }
        let items = selected
            .iter()
            .map(|i| conversion::to_wire(&t.def, i).into_owned())
            .collect();
        let body = list_body(&t.def, metadata, items);
        if let Some(include) = table {
            let now = self.store.clock().since_epoch();
            return Ok(json_response(
                200,
                &table::of_list(&t.def, &body, include, now),
            ));
        }
        Ok(json_response(200, &body))
    }

    pub(super) fn watch(
        &self,
        t: &Target,
        q: &Query,
        table: Option<table::IncludeObject>,
    ) -> Result<Response<ResponseBody>, ApiError> {
        let body = watch::start(
            &self.store,
            &t.def,
            t.namespace.as_deref(),
            t.name.as_deref(),
            q,
            table,
        )?;
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        Ok(resp)
    }
}

pub(crate) fn item_key(item: &Value) -> String {
    format!(
        "{}/{}",
        meta_str(item, "namespace").unwrap_or_default(),
        meta_str(item, "name").unwrap_or_default()
    )
}
