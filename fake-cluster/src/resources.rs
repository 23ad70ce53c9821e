//! The table of served resources: one entry per resource, with its scope, kind and policies.

use std::sync::{Arc, LazyLock, RwLock};

use crate::json::{Value, json};

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

/// What a custom resource version adds to its [`ResourceDef`] (see [`crate::crd`]).
pub type CustomVersion = crate::crd::CustomVersion;

/// One served resource at one version.
///
/// Built-in resources are a fixed table; custom resources come and go with their
/// CustomResourceDefinitions, so the table is shared through [`ResourceRef`] handles and a
/// removed definition is freed once the last handle (an open watch, a change in the
/// history) goes.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name used in paths.
    pub plural: String,
    /// Singular name, for discovery.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (such as `all`), for discovery.
    pub categories: Vec<String>,
    /// Subresources served (`status`, `log`, `scale`).
    pub subresources: Vec<String>,
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
    /// The schema, printer columns, storage version and subresource paths of a custom
    /// resource; `None` for built-in resources.
    pub custom: Option<CustomVersion>,
    /// `group/plural`: objects of every version of a resource share one storage.
    storage_key: Arc<str>,
}

/// Two definitions are the same resource version when group, version and plural agree.
impl PartialEq for ResourceDef {
    fn eq(&self, other: &Self) -> bool {
        // The plural first: it tells most resources apart by its length alone, where the
        // group and version ("" and "v1" for most built-ins) take a comparison each.
        self.plural == other.plural && self.group == other.group && self.version == other.version
    }
}

impl Eq for ResourceDef {}

/// A shared handle to a served resource: what the store, watches and controllers keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef(Arc<ResourceDef>);

impl ResourceRef {
    /// Wraps a definition.
    pub fn new(def: ResourceDef) -> Self {
        Self(Arc::new(def))
    }
}

impl std::ops::Deref for ResourceRef {
    type Target = ResourceDef;
    fn deref(&self) -> &ResourceDef {
        &self.0
    }
}

impl AsRef<ResourceDef> for ResourceRef {
    fn as_ref(&self) -> &ResourceDef {
        &self.0
    }
}

impl PartialEq<&ResourceRef> for ResourceRef {
    fn eq(&self, other: &&ResourceRef) -> bool {
        *self == **other
    }
}

impl PartialEq<ResourceRef> for ResourceDef {
    fn eq(&self, other: &ResourceRef) -> bool {
        *self == *other.0
    }
}

impl PartialEq<ResourceDef> for ResourceRef {
    fn eq(&self, other: &ResourceDef) -> bool {
        *self.0 == *other
    }
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
    /// A definition with the usual policies: Background propagation, a Status answer to an
    /// immediate delete, no generation, names that need not be label values, no short
    /// names, categories or subresources.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        plural: impl Into<String>,
        singular: impl Into<String>,
        kind: impl Into<String>,
        namespaced: bool,
    ) -> Self {
        let (group, plural) = (group.into(), plural.into());
        Self {
            storage_key: format!("{group}/{plural}").into(),
            group,
            version: version.into(),
            plural,
            singular: singular.into(),
            kind: kind.into(),
            namespaced,
            short_names: Vec::new(),
            categories: Vec::new(),
            subresources: Vec::new(),
            default_propagation: Propagation::Background,
            delete_returns_object: false,
            has_generation: false,
            name_is_label: false,
            custom: None,
        }
    }

    /// `group/plural`, the same for every version of the resource: the store's key.
    pub fn storage_key(&self) -> &Arc<str> {
        &self.storage_key
    }

    /// Whether this resource serves the subresource `sub` (`status`, `scale`, `log`).
    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.iter().any(|s| s == sub)
    }

    /// `apiVersion` of objects of this resource.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether `api_version` is [`ResourceDef::api_version`] (compared without making it).
    pub fn has_api_version(&self, api_version: &str) -> bool {
        if self.group.is_empty() {
            return api_version == self.version;
        }
        api_version
            .strip_prefix(self.group.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            == Some(self.version.as_str())
    }

    /// The `apiVersion` the store keeps objects of this resource at: the storage version's
    /// for a custom resource, else [`ResourceDef::api_version`].
    pub fn storage_api_version(&self) -> String {
        match &self.custom {
            Some(c) => format!("{}/{}", self.group, c.storage_version),
            None => self.api_version(),
        }
    }

    /// `configmaps`, or `jobs.batch` for a grouped resource, as error messages write it.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
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
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
            "shortNames": self.short_names,
        });
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut out = vec![main];
        for sub in &self.subresources {
            let verbs: &[&str] = match sub.as_str() {
                "log" => &["get"],
                // The namespace registry's `FinalizeREST` implements Update alone.
                "finalize" => &["update"],
                _ => &["get", "patch", "update"],
            };
            let mut entry = json!({
                "name": format!("{}/{sub}", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": match sub.as_str() { "log" => "Pod", "scale" => "Scale", _ => &self.kind },
                "verbs": verbs,
            });
            if sub == "scale" {
                entry["group"] = json!("autoscaling");
                entry["version"] = json!("v1");
            }
            out.push(entry);
        }
        out
    }
}

/// One row of the built-in table.
struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    sub: &'static [&'static str],
    prop: Propagation,
    returns_object: bool,
    generation: bool,
    name_is_label: bool,
}

macro_rules! def {
    ($group:expr, $version:expr, $plural:expr, $singular:expr, $kind:expr, $namespaced:expr,
     short: $short:expr, sub: $sub:expr, prop: $prop:expr, returns_object: $ret:expr,
     generation: $gen:expr, name_is_label: $lbl:expr) => {
        Builtin {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            namespaced: $namespaced,
            short: $short,
            sub: $sub,
            prop: $prop,
            returns_object: $ret,
            generation: $gen,
            name_is_label: $lbl,
        }
    };
}

/// The built-in resources the fake serves.
const BUILTIN: &[Builtin] = &[
    def!("", "v1", "namespaces", "namespace", "Namespace", false, short: &["ns"], sub: &["status", "finalize"],
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
    // Pods have a generation since 1.33 (KEP-5067; the API server's part is not gated).
    def!("", "v1", "pods", "pod", "Pod", true, short: &["po"], sub: &["status", "log"],
         prop: Propagation::Background, returns_object: true, generation: true, name_is_label: false),
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
    // Custom resources come from these (see `crate::crd`).
    def!("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", false,
         short: &["crd", "crds"], sub: &["status"],
         prop: Propagation::Background, returns_object: true, generation: true, name_is_label: false),
];

static BUILTINS: LazyLock<Vec<ResourceRef>> = LazyLock::new(|| {
    BUILTIN
        .iter()
        .map(|b| {
            let mut d = ResourceDef::new(
                b.group,
                b.version,
                b.plural,
                b.singular,
                b.kind,
                b.namespaced,
            );
            d.short_names = b.short.iter().map(|s| (*s).to_owned()).collect();
            d.subresources = b.sub.iter().map(|s| (*s).to_owned()).collect();
            d.default_propagation = b.prop;
            d.delete_returns_object = b.returns_object;
            d.has_generation = b.generation;
            d.name_is_label = b.name_is_label;
            ResourceRef::new(d)
        })
        .collect()
});

/// Every built-in resource, in the table's order.
pub fn builtins() -> &'static [ResourceRef] {
    &BUILTINS
}

/// Finds a built-in resource by group, version and plural.
pub fn builtin(group: &str, version: &str, plural: &str) -> Option<&'static ResourceRef> {
    BUILTINS
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The core/v1 resource with this plural (panics never: returns `None` if absent).
pub fn core(plural: &str) -> Option<&'static ResourceRef> {
    builtin("", "v1", plural)
}

/// The resources a cluster serves: the built-in table and the versions of the custom
/// resources whose definitions are established. Cheap to read, shared by every part.
#[derive(Default)]
pub struct Registry {
    custom: RwLock<Vec<ResourceRef>>,
}

impl Registry {
    fn custom(&self) -> std::sync::RwLockReadGuard<'_, Vec<ResourceRef>> {
        self.custom.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Every served resource version: built-ins first, then custom ones.
    pub fn all(&self) -> Vec<ResourceRef> {
        let mut out = BUILTINS.clone();
        out.extend(self.custom().iter().cloned());
        out
    }

    /// Whether any served resource satisfies `pred` (without copying the table).
    pub fn any(&self, pred: impl Fn(&ResourceDef) -> bool) -> bool {
        BUILTINS.iter().any(|r| pred(r)) || self.custom().iter().any(|r| pred(r))
    }

    /// Finds a resource by group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceRef> {
        if let Some(b) = builtin(group, version, plural) {
            return Some(b.clone());
        }
        self.custom()
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// Finds a resource by `apiVersion` and kind (for ownerReferences).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<ResourceRef> {
        let matches = |r: &&ResourceRef| r.kind == kind && r.has_api_version(api_version);
        if let Some(b) = BUILTINS.iter().find(matches) {
            return Some(b.clone());
        }
        self.custom().iter().find(matches).cloned()
    }

    /// The resource through which the store keeps objects of `def`: core Events for
    /// `events.k8s.io` Events, else `def` itself.
    pub fn storage_of(&self, def: &ResourceRef) -> ResourceRef {
        if crate::events::is_converted(def) {
            return well_known::events().clone();
        }
        // A custom resource's versions share one storage; the store writes the storage
        // version's `apiVersion` itself (see `ResourceDef::storage_api_version`), and
        // keeps the requested version's subresources and schema for the write.
        def.clone()
    }

    /// Serves these versions of one custom resource (`group/plural`) instead of whatever
    /// was served for it before.
    pub fn set_custom(&self, storage_key: &str, versions: Vec<ResourceRef>) {
        let mut custom = self.custom.write().unwrap_or_else(|e| e.into_inner());
        custom.retain(|r| &**r.storage_key() != storage_key);
        custom.extend(versions);
    }

    /// Stops serving the custom resource `group/plural`; its definitions are freed when the
    /// last handle goes.
    pub fn remove_custom(&self, storage_key: &str) {
        self.set_custom(storage_key, Vec::new());
    }
}

/// Well-known resources used by the controllers.
pub mod well_known {
    use super::{BUILTINS, ResourceRef};

    /// `v1/namespaces`.
    pub fn namespaces() -> &'static ResourceRef {
        &BUILTINS[0]
    }
    /// `v1/nodes`.
    pub fn nodes() -> &'static ResourceRef {
        &BUILTINS[1]
    }
    /// `v1/configmaps`.
    pub fn configmaps() -> &'static ResourceRef {
        &BUILTINS[2]
    }
    /// `v1/serviceaccounts`.
    pub fn serviceaccounts() -> &'static ResourceRef {
        &BUILTINS[4]
    }
    /// `v1/events`.
    pub fn events() -> &'static ResourceRef {
        &BUILTINS[5]
    }
    /// `v1/pods`.
    pub fn pods() -> &'static ResourceRef {
        &BUILTINS[6]
    }
    /// `batch/v1/jobs`.
    pub fn jobs() -> &'static ResourceRef {
        &BUILTINS[7]
    }
    /// `events.k8s.io/v1/events`, stored as core `v1/events`.
    pub fn events_v1() -> &'static ResourceRef {
        &BUILTINS[8]
    }
    /// `apiextensions.k8s.io/v1/customresourcedefinitions`.
    pub fn crds() -> &'static ResourceRef {
        &BUILTINS[13]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_api_version_is_api_version_compared() {
        let custom = ResourceRef::new(ResourceDef {
            group: "example.com".into(),
            version: "v1".into(),
            ..(**well_known::jobs()).clone()
        });
        for def in builtins().iter().chain([&custom]) {
            for candidate in [
                "v1",
                "batch/v1",
                "apps/v1",
                "batch/v1beta1",
                "batchv1",
                "batch/",
                "/v1",
                "example.com/v1",
                "example.com//v1",
                "",
            ] {
                assert_eq!(
                    def.has_api_version(candidate),
                    def.api_version() == candidate,
                    "{} {candidate}",
                    def.plural
                );
            }
        }
    }

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
        assert_eq!(well_known::crds().kind, "CustomResourceDefinition");
    }
}
