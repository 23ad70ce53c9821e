//! What the apiextensions controllers write into a definition (see [`prepare`]): its names
//! defaulted, `status.acceptedNames` (unless a name conflicts with another definition of
//! the group), the `NamesAccepted` and `Established` conditions and `storedVersions`.

use std::sync::Arc;

use crate::json::{Value, json, strings_at};

use super::{is_crd, str_at, versions};
use crate::resources::ResourceDef;

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": kind, "status": status, "lastTransitionTime": now,
           "reason": reason, "message": message})
}

/// Keeps a condition's `lastTransitionTime` when its status did not change.
fn carry_transition(new: &mut Value, old: &[Value]) {
    let kind = new.get("type").cloned();
    if let Some(prev) = old.iter().find(|c| c.get("type") == kind.as_ref())
        && prev.get("status") == new.get("status")
        && let Some(t) = prev.get("lastTransitionTime")
    {
        new["lastTransitionTime"] = t.clone();
    }
}

/// Defaults and status of a definition about to be written: `singular` and `listKind`
/// defaulted, `status.acceptedNames`, conditions and `storedVersions` as the
/// apiextensions controllers set them. Does nothing to other objects.
///
/// `others` are the other definitions stored: a name (plural, singular, short name, kind
/// or list kind) that another definition of the same group has accepted is a conflict, and
/// then `NamesAccepted` is False with the real reason (`SingularConflict`,
/// `ShortNamesConflict`, `KindConflict`, `ListKindConflict`), the previously accepted
/// names stay, and a definition never established is not (so not served). A conflict is
/// not looked at again when the other definition goes.
pub fn prepare(def: &ResourceDef, obj: &mut Value, now: &str, others: &[Arc<Value>]) {
    if !is_crd(def) {
        return;
    }
    if let Some(names) = obj.pointer_mut("/spec/names")
        && let Some(kind) = names.get("kind").and_then(Value::as_str).map(str::to_owned)
    {
        if names.get("singular").is_none_or(|s| s.as_str() == Some("")) {
            names["singular"] = json!(kind.to_lowercase());
        }
        if names.get("listKind").is_none_or(|s| s.as_str() == Some("")) {
            names["listKind"] = json!(format!("{kind}List"));
        }
    }
    if obj.pointer("/spec/conversion").is_none() && obj.get("spec").is_some() {
        obj["spec"]["conversion"] = json!({"strategy": "None"});
    }
    let old_conditions = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut stored = strings_at(obj, "/status/storedVersions");
    if let Some(storage) = versions(obj)
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        && !stored.iter().any(|s| s == storage)
    {
        stored.push(storage.to_owned());
    }
    let terminating = obj.pointer("/metadata/deletionTimestamp").is_some();
    let conflict = name_conflict(obj, others);
    let was_established = old_conditions
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    let established = || {
        condition(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            now,
        )
    };
    let mut conditions = match &conflict {
        None => vec![
            condition(
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
                now,
            ),
            established(),
        ],
        Some((reason, message)) => vec![
            condition("NamesAccepted", "False", reason, message, now),
            if was_established {
                established()
            } else {
                condition(
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                    now,
                )
            },
        ],
    };
    if terminating {
        conditions.push(condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        ));
    }
    for c in &mut conditions {
        carry_transition(c, &old_conditions);
    }
    let accepted = match conflict {
        None => obj.pointer("/spec/names").cloned().unwrap_or(json!({})),
        // Never accepted: empty names, as the real server writes them.
        Some(_) => obj
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or(json!({"plural": "", "kind": ""})),
    };
    obj["status"] = json!({
        "acceptedNames": accepted,
        "conditions": conditions,
        "storedVersions": stored,
    });
}

/// The first name of `crd` that another definition of its group has accepted: the
/// condition's reason and message.
fn name_conflict(crd: &Value, others: &[Arc<Value>]) -> Option<(&'static str, String)> {
    let group = str_at(crd, "/spec/group")?;
    let me = str_at(crd, "/metadata/name");
    let mut names: Vec<String> = Vec::new();
    let mut kinds: Vec<String> = Vec::new();
    for o in others
        .iter()
        .filter(|o| str_at(o, "/spec/group") == Some(group) && str_at(o, "/metadata/name") != me)
    {
        let accepted = o
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or(json!({}));
        for key in ["plural", "singular"] {
            names.extend(str_at(&accepted, &format!("/{key}")).map(str::to_owned));
        }
        names.extend(strings_at(&accepted, "/shortNames"));
        for key in ["kind", "listKind"] {
            kinds.extend(str_at(&accepted, &format!("/{key}")).map(str::to_owned));
        }
    }
    let taken = |v: &str, pool: &[String]| !v.is_empty() && pool.iter().any(|n| n == v);
    let in_use = |v: &str| format!("{v:?} is already in use");
    let names_of = |key: &str| str_at(crd, &format!("/spec/names/{key}")).unwrap_or_default();
    if taken(names_of("plural"), &names) {
        return Some(("PluralConflict", in_use(names_of("plural"))));
    }
    if taken(names_of("singular"), &names) {
        return Some(("SingularConflict", in_use(names_of("singular"))));
    }
    if let Some(short) = strings_at(crd, "/spec/names/shortNames")
        .into_iter()
        .find(|s| taken(s, &names))
    {
        return Some(("ShortNamesConflict", in_use(&short)));
    }
    if taken(names_of("kind"), &kinds) {
        return Some(("KindConflict", in_use(names_of("kind"))));
    }
    if taken(names_of("listKind"), &kinds) {
        return Some(("ListKindConflict", in_use(names_of("listKind"))));
    }
    None
}
