//! The `log` subresource of pods, answered as the kubelet would through the API server.

use crate::json::{Value, json};
use http::Response;

use crate::api::{ApiServer, ResponseBody, bytes_response};
use crate::logs::LogQuery;
use crate::query::Query;
use crate::resources::well_known;
use crate::status::ApiError;
use crate::store::meta_str;

/// 422 for log options out of range, as the real `ValidatePodLogOptions` (run before the
/// pod is read): negative `tailLines`, `limitBytes` or `sinceSeconds` below 1, or both
/// `sinceSeconds` and `sinceTime`.
fn validate_options(name: &str, q: &Query) -> Result<(), ApiError> {
    let int = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    // (field, reason, message) of each cause.
    let mut causes: Vec<(&str, &str, String)> = Vec::new();
    let mut below = |field: &'static str, min: i64, detail: &str| {
        if let Some(v) = int(field).filter(|v| *v < min) {
            causes.push((
                field,
                "FieldValueInvalid",
                format!("Invalid value: {v}: {detail}"),
            ));
        }
    };
    below("tailLines", 0, "must be greater than or equal to 0");
    below("limitBytes", 1, "must be greater than 0");
    if q.contains_key("sinceSeconds") && q.contains_key("sinceTime") {
        let detail = "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified";
        causes.push(("", "FieldValueForbidden", detail.to_owned()));
    } else {
        below("sinceSeconds", 1, "must be greater than 0");
    }
    if causes.is_empty() {
        return Ok(());
    }
    let summary: Vec<String> = causes.iter().map(|(f, _, m)| format!("{f}: {m}")).collect();
    let summary = match summary.as_slice() {
        [one] => one.clone(),
        all => format!("[{}]", all.join(", ")),
    };
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!("PodLogOptions \"{name}\" is invalid: {summary}"),
    );
    let causes: Vec<Value> = causes
        .into_iter()
        .map(|(field, reason, message)| json!({"reason": reason, "message": message, "field": field}))
        .collect();
    e.details = Some(json!({"name": name, "kind": "PodLogOptions", "causes": causes}));
    Err(e)
}

impl ApiServer {
    /// `GET .../pods/<name>/log`: the container's log as text, with the kubelet's errors.
    pub(crate) fn pod_log(
        &self,
        ns: &str,
        name: &str,
        q: &Query,
    ) -> Result<Response<ResponseBody>, ApiError> {
        validate_options(name, q)?;
        let pod = self.store.get(well_known::pods(), ns, name)?;
        let names = |list: &str| -> Vec<String> {
            pod.pointer(&format!("/spec/{list}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = names("containers");
        let inits = names("initContainers");
        let container = match q.get("container").filter(|c| !c.is_empty()) {
            Some(c) => c.clone(),
            None if containers.len() == 1 => containers[0].clone(),
            None => {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}] or one of the init containers: [{}]",
                    containers.join(" "),
                    inits.join(" ")
                )));
            }
        };
        if !containers.contains(&container) && !inits.contains(&container) {
            return Err(ApiError::bad_request(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
        let status = ["containerStatuses", "initContainerStatuses"]
            .iter()
            .filter_map(|l| {
                pod.pointer(&format!("/status/{l}"))
                    .and_then(Value::as_array)
            })
            .flatten()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(container.as_str()));
        let waiting = status.and_then(|s| s.pointer("/state/waiting"));
        let started = status.is_some_and(|s| {
            s.pointer("/state/running").is_some() || s.pointer("/state/terminated").is_some()
        });
        if !started {
            let reason = waiting
                .and_then(|w| w.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating");
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
        if matches!(q.get("previous").map(String::as_str), Some("true" | "1")) {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        let query = LogQuery {
            tail_lines: q.get("tailLines").and_then(|v| v.parse().ok()),
            limit_bytes: q.get("limitBytes").and_then(|v| v.parse().ok()),
            timestamps: matches!(q.get("timestamps").map(String::as_str), Some("true" | "1")),
            since: self.log_since(q),
        };
        let uid = meta_str(&pod, "uid").unwrap_or_default();
        if matches!(q.get("follow").map(String::as_str), Some("true" | "1")) {
            return Ok(self.follow(ns, name, uid, &container, query));
        }
        Ok(bytes_response(
            200,
            "text/plain",
            self.logs.read(uid, &container, &query),
        ))
    }

    /// From when the lines are served: `sinceSeconds` before now, or `sinceTime` (RFC 3339),
    /// as time since the Unix epoch.
    fn log_since(&self, q: &Query) -> Option<std::time::Duration> {
        if let Some(secs) = q.get("sinceSeconds").and_then(|v| v.parse::<u64>().ok()) {
            let now = self.store.clock().since_epoch();
            return Some(now.saturating_sub(std::time::Duration::from_secs(secs)));
        }
        let t: jiff::Timestamp = q.get("sinceTime")?.parse().ok()?;
        let since = t.duration_since(jiff::Timestamp::UNIX_EPOCH);
        Some(std::time::Duration::try_from(since).unwrap_or_default())
    }

    /// `follow=true`: what the log holds, then each line as it comes, until the container
    /// ends (or its pod is deleted); `limitBytes` applies to the whole stream.
    fn follow(
        &self,
        ns: &str,
        pod: &str,
        uid: &str,
        container: &str,
        query: LogQuery,
    ) -> Response<ResponseBody> {
        use http_body_util::BodyExt as _;
        let logs = self.logs.clone();
        let store = self.store.clone();
        let (ns, pod) = (ns.to_owned(), pod.to_owned());
        let (uid, container) = (uid.to_owned(), container.to_owned());
        let mut changed = logs.subscribe(&uid);
        changed.borrow_and_update();
        let stream = futures::stream::unfold(
            (None, 0usize, false, changed),
            move |(cursor, sent, done, mut changed)| {
                let (logs, store) = (logs.clone(), store.clone());
                let (uid, container, query) = (uid.clone(), container.clone(), query.clone());
                let (ns, pod) = (ns.clone(), pod.clone());
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        let (mut bytes, next, finished) =
                            logs.read_since(&uid, &container, &query, cursor);
                        if let Some(limit) = query.limit_bytes {
                            bytes.truncate(limit.saturating_sub(sent));
                        }
                        let sent = sent + bytes.len();
                        let over = query.limit_bytes.is_some_and(|l| sent >= l);
                        if !bytes.is_empty() || finished || over {
                            let frame =
                                Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes));
                            return Some((frame, (Some(next), sent, finished || over, changed)));
                        }
                        // Nothing new: the pod may be gone; else wait for the log to grow.
                        let alive = store
                            .lookup(well_known::pods(), &ns, &pod)
                            .is_some_and(|p| meta_str(&p, "uid") == Some(uid.as_str()));
                        if !alive || changed.changed().await.is_err() {
                            return None;
                        }
                    }
                }
            },
        );
        let mut resp = Response::new(http_body_util::StreamBody::new(stream).boxed_unsync());
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        resp
    }
}
