//! The `log` subresource of pods, answered as the kubelet would through the API server.

use http::Response;
use serde_json::Value;

use crate::api::{ApiServer, ResponseBody, bytes_response};
use crate::logs::LogQuery;
use crate::query::Query;
use crate::resources::well_known;
use crate::status::ApiError;
use crate::store::meta_str;

impl ApiServer {
    /// `GET .../pods/<name>/log`: the container's log as text, with the kubelet's errors.
    pub(crate) fn pod_log(
        &self,
        ns: &str,
        name: &str,
        q: &Query,
    ) -> Result<Response<ResponseBody>, ApiError> {
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
        };
        let uid = meta_str(&pod, "uid").unwrap_or_default();
        Ok(bytes_response(
            200,
            "text/plain",
            self.logs.read(uid, &container, &query),
        ))
    }
}
