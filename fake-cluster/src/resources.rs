//! The table of served resources: one entry per resource, with its scope, kind and policies.

use serde_json::{Value, json};

/// How dependents are treated when a request names no propagation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// The owner goes now, the garbage collector removes dependents afterwards.
    Background,
    /// The owner waits for its blocking dependents.
    Foreground,
    /// Dependents lose their ownerReference and stay.
    Orphan,
}

impl Propagation {
    /// Parses the `propagationPolicy` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Background" => Some(Self::Background),
            "Foreground" => Some(Self::Foreground),
            "Orphan" => Some(Self::Orphan),
            _ => None,
        }
    }
}

/// One served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural name used in paths.
    pub plural: &'static str,
    /// Singular name, for discovery.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: &'static [&'static str],
    /// Subresources served (`status`, `log`).
    pub subresources: &'static [&'static str],
    /// Propagation policy when a delete names none.
    pub default_propagation: Propagation,
    /// Whether an immediate delete answers with the object (true) or a Success Status, as
    /// the registry's `ReturnDeletedObject` says: pods, service accounts and namespaces
    /// return the object; configmaps, secrets, events, nodes and jobs a Status. (An object
    /// left terminating by finalizers is always returned.)
    pub delete_returns_object: bool,
    /// Whether `metadata.generation` tracks changes to `spec`.
    pub has_generation: bool,
    /// Whether the object's name must also be a valid label value (at most 63 characters).
    pub name_is_label: bool,
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    /// `apiVersion` of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps`, or `jobs.batch` for a grouped resource, as error messages write it.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `details` of a Status about one object.
    pub fn details(&self, name: &str) -> Value {
        let mut d = json!({"name": name, "kind": self.plural});
        if !self.group.is_empty() {
            d["group"] = json!(self.group);
        }
        d
    }

    /// The APIResource entries of this resource for discovery.
    pub fn discovery(&self) -> Vec<Value> {
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
            "shortNames": self.short_names,
        })];
        for sub in self.subresources {
            let verbs: &[&str] = if *sub == "log" {
                &["get"]
            } else {
                &["get", "patch", "update"]
            };
            out.push(json!({
                "name": format!("{}/{sub}", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": if *sub == "log" { "Pod" } else { self.kind },
                "verbs": verbs,
            }));
        }
        out
    }
}

macro_rules! def {
    ($group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $namespaced:expr,
     short: $short:expr, sub: $sub:expr, prop: $prop:expr, returns_object: $ret:expr,
     generation: $gen:expr, name_is_label: $lbl:expr) => {
        ResourceDef {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short_names: $short,
            subresources: $sub,
            default_propagation: $prop,
            delete_returns_object: $ret,
            has_generation: $gen,
            name_is_label: $lbl,
        }
    };
}

/// Every resource the fake serves.
pub static RESOURCES: &[ResourceDef] = &[
    def!("", "v1", "namespaces", "namespace", "Namespace", false, short: &["ns"], sub: &["status"],
         prop: Propagation::Background, returns_object: true, generation: false, name_is_label: true),
    def!("", "v1", "nodes", "node", "Node", false, short: &["no"], sub: &["status"],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    def!("", "v1", "configmaps", "configmap", "ConfigMap", true, short: &["cm"], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    def!("", "v1", "secrets", "secret", "Secret", true, short: &[], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    def!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, short: &["sa"], sub: &[],
         prop: Propagation::Background, returns_object: true, generation: false, name_is_label: false),
    def!("", "v1", "events", "event", "Event", true, short: &["ev"], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    def!("", "v1", "pods", "pod", "Pod", true, short: &["po"], sub: &["status", "log"],
         prop: Propagation::Background, returns_object: true, generation: false, name_is_label: false),
    def!("batch", "v1", "jobs", "job", "Job", true, short: &[], sub: &["status"],
         prop: Propagation::Orphan, returns_object: false, generation: true, name_is_label: true),
    def!("events.k8s.io", "v1", "events", "event", "Event", true, short: &["ev"], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    // RBAC objects, evaluated by `crate::rbac` when authorization is on.
    def!("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, short: &[], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    def!("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, short: &[], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    def!("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, short: &[], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
    def!("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, short: &[], sub: &[],
         prop: Propagation::Background, returns_object: false, generation: false, name_is_label: false),
];

/// Finds a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by `apiVersion` and kind (for ownerReferences).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The core/v1 resource with this plural (panics never: returns `None` if absent).
pub fn core(plural: &str) -> Option<&'static ResourceDef> {
    find("", "v1", plural)
}

/// Well-known resources used by the controllers.
pub mod well_known {
    use super::{RESOURCES, ResourceDef};

    /// `v1/namespaces`.
    pub fn namespaces() -> &'static ResourceDef {
        &RESOURCES[0]
    }
    /// `v1/nodes`.
    pub fn nodes() -> &'static ResourceDef {
        &RESOURCES[1]
    }
    /// `v1/configmaps`.
    pub fn configmaps() -> &'static ResourceDef {
        &RESOURCES[2]
    }
    /// `v1/serviceaccounts`.
    pub fn serviceaccounts() -> &'static ResourceDef {
        &RESOURCES[4]
    }
    /// `v1/events`.
    pub fn events() -> &'static ResourceDef {
        &RESOURCES[5]
    }
    /// `v1/pods`.
    pub fn pods() -> &'static ResourceDef {
        &RESOURCES[6]
    }
    /// `batch/v1/jobs`.
    pub fn jobs() -> &'static ResourceDef {
        &RESOURCES[7]
    }
    /// `events.k8s.io/v1/events`, stored as core `v1/events`.
    pub fn events_v1() -> &'static ResourceDef {
        &RESOURCES[8]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_entries_point_at_the_right_rows() {
        assert_eq!(well_known::namespaces().plural, "namespaces");
        assert_eq!(well_known::nodes().plural, "nodes");
        assert_eq!(well_known::configmaps().plural, "configmaps");
        assert_eq!(well_known::serviceaccounts().plural, "serviceaccounts");
        assert_eq!(well_known::events().plural, "events");
        assert_eq!(well_known::events().group, "");
        assert_eq!(well_known::pods().plural, "pods");
        assert_eq!(well_known::jobs().qualified_plural(), "jobs.batch");
        assert_eq!(well_known::events_v1().group, "events.k8s.io");
    }
}
