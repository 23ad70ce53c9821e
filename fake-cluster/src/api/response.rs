//! The responses and bodies of the request handler: JSON and byte responses, `Status` error
//! bodies, `Warning` headers, a request body parsed or collected, and list bodies.

use crate::json::Value;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::ResponseBody;
use crate::resources::ResourceDef;
use crate::status::ApiError;

/// Adds one `Warning: 299 - "<text>"` header per warning.
pub(crate) fn with_warnings(
    mut resp: Response<ResponseBody>,
    warnings: &[String],
) -> Response<ResponseBody> {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = header::HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// A JSON response.
pub fn json_response(code: u16, body: &Value) -> Response<ResponseBody> {
    bytes_response(code, "application/json", crate::encoding::to_bytes(body))
}

pub(crate) fn bytes_response(code: u16, content_type: &str, body: Bytes) -> Response<ResponseBody> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

pub(crate) fn error_response(e: &ApiError) -> Response<ResponseBody> {
    json_response(e.code, &e.to_status())
}

pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    crate::encoding::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized or malformed: {e}"
        ))
    })
}

/// Collects a request body of any type into bytes.
pub async fn collect_body<B>(body: B) -> Result<Bytes, B::Error>
where
    B: http_body::Body,
{
    Ok(body.collect().await?.to_bytes())
}

/// A list of `def`'s objects: `{"apiVersion", "items", "kind": "<Kind>List", "metadata"}`.
/// Built member by member: `json!` would serialise every item into a `serde_json::Value`
/// and convert it back, two deep copies of each listed object (which otherwise shares its
/// members with the stored one).
pub(crate) fn list_body(def: &ResourceDef, metadata: Value, items: Vec<Value>) -> Value {
    Value::Object(crate::json::Map::from_iter([
        ("apiVersion".to_owned(), Value::String(def.api_version())),
        ("items".to_owned(), Value::Array(items)),
        (
            "kind".to_owned(),
            Value::String(format!("{}List", def.kind)),
        ),
        ("metadata".to_owned(), metadata),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    #[test]
    fn a_list_body_is_what_json_builds_and_shares_its_items() {
        let def = crate::resources::well_known::configmaps();
        let item = crate::json::json!({"metadata": {"name": "a"}, "data": {"k": "v"}});
        let body = list_body(def, json!({"resourceVersion": "3"}), vec![item.clone()]);
        assert_eq!(
            body,
            json!({"kind": "ConfigMapList", "apiVersion": "v1",
                   "metadata": {"resourceVersion": "3"}, "items": [item.clone()]})
        );
        let listed = body["items"][0]["data"].as_object().unwrap();
        assert!(listed.ptr_eq(item["data"].as_object().unwrap()));
    }
}
