//! A Job's `podFailurePolicy` applied to one failed pod, after
//! `pkg/controller/job/pod_failure_policy.go`: the first rule that matches decides; a rule
//! matches on the exit codes of terminated containers (`onExitCodes`, exit code 0 never
//! matches) or on pod conditions (`onPodConditions`).

use crate::json::Value;
use crate::selector::at;

/// What a failed pod means for its Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The Job fails now, with this condition message.
    FailJob(String),
    /// The failure does not count towards `backoffLimit`.
    Ignore,
    /// The failure counts (no rule matched, or a `Count` rule did).
    Count,
}

fn exit_code_match(rule: &Value, pod: &Value) -> Option<(String, i64)> {
    let on = rule.get("onExitCodes")?;
    let only = on.get("containerName").and_then(Value::as_str);
    let op = on.get("operator").and_then(Value::as_str).unwrap_or("In");
    let values: Vec<i64> = on
        .get("values")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|l| at(pod, &format!("/status/{l}")).and_then(Value::as_array))
        .flatten()
        .filter(|s| only.is_none_or(|n| s["name"] == n))
        .find_map(|s| {
            let code = at(s, "/state/terminated/exitCode")?.as_i64()?;
            let hit = code != 0
                && match op {
                    "NotIn" => !values.contains(&code),
                    _ => values.contains(&code),
                };
            hit.then(|| (s["name"].as_str().unwrap_or_default().to_owned(), code))
        })
}

fn condition_match(rule: &Value, pod: &Value) -> Option<String> {
    let patterns = rule.get("onPodConditions")?.as_array()?;
    let conds = at(pod, "/status/conditions")?.as_array()?;
    patterns.iter().find_map(|pat| {
        let kind = pat.get("type")?.as_str()?;
        let status = pat.get("status").and_then(Value::as_str).unwrap_or("True");
        conds
            .iter()
            .any(|c| c["type"] == kind && c["status"] == status)
            .then(|| kind.to_owned())
    })
}

/// Applies `policy` to the failed `pod`.
pub(crate) fn judge(policy: &Value, pod: &Value) -> Verdict {
    let ns = at(pod, "/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = at(pod, "/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rules = policy.get("rules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let action = rule
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let message = if let Some((container, code)) = exit_code_match(rule, pod) {
            format!(
                "Container {container} for pod {ns}/{name} failed with exit code {code} matching {action} rule at index {i}"
            )
        } else if let Some(cond) = condition_match(rule, pod) {
            format!("Pod {ns}/{name} has condition {cond} matching {action} rule at index {i}")
        } else {
            continue;
        };
        return match action {
            "FailJob" => Verdict::FailJob(message),
            "Ignore" => Verdict::Ignore,
            _ => Verdict::Count,
        };
    }
    Verdict::Count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::json;

    fn pod(code: i64) -> Value {
        json!({"metadata": {"namespace": "n", "name": "p"}, "status": {"containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": code}}}]}})
    }

    #[test]
    fn first_matching_rule_decides() {
        let policy = json!({"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "NotIn", "values": [1]}},
        ]});
        assert_eq!(judge(&policy, &pod(3)), Verdict::Ignore);
        assert_eq!(judge(&policy, &pod(1)), Verdict::Count);
        assert_eq!(
            judge(&policy, &pod(42)),
            Verdict::FailJob(
                "Container main for pod n/p failed with exit code 42 matching FailJob rule at index 1"
                    .into()
            )
        );
    }
}
