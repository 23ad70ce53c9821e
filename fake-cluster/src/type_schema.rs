//! How the fields of the built-in types merge: the facts strategic merge patch and
//! server-side apply need, as Kubernetes 1.33 declares them on its Go types
//! (`patchStrategy`/`patchMergeKey` struct tags, seen in the OpenAPI as
//! `x-kubernetes-patch-strategy`/`x-kubernetes-patch-merge-key`, and the `+listType`,
//! `+listMapKey`, `+mapType`/`+structType` markers, seen as `x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
//!
//! Only what differs from the default is listed: a field not listed in a struct is plain
//! content (objects merge field by field, lists are atomic and replaced whole). Where a type
//! has no `+listType` marker, server-side apply derives one from the patch strategy, as the
//! API server's schema conversion does: `merge` with a key is a map list keyed by it, `merge`
//! without one a set.
//!
//! Checked against `staging/src/k8s.io/api/core/v1/types.go` and `batch/v1/types.go`: for
//! example a container's `ports` merge by `containerPort` in a strategic merge patch but are
//! keyed by `containerPort` and `protocol` (default `TCP`) in server-side apply; a Job's
//! `status.conditions` merge by `type` in a patch but are atomic for apply.

use crate::json::Value;

/// The merge semantics of one value.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// Built-in content with nothing special: objects merge field by field, lists are
    /// atomic.
    Plain,
    /// Content with no schema (custom resources without one): as [`Shape::Plain`], and
    /// every nested object is also owned as a field of its own.
    Deduced,
    /// Replaced, and owned, as a whole.
    Atomic,
    /// A struct whose listed fields have their own shapes; the others are plain.
    Struct(&'a [(&'a str, Shape<'a>)]),
    /// A list with merge semantics.
    List(&'a ListShape<'a>),
    /// A value described by a structural OpenAPI v3 schema (a custom resource's):
    /// `properties`, `additionalProperties`, `items`, `x-kubernetes-list-type` (`atomic`,
    /// the default, `set`, `map` with `x-kubernetes-list-map-keys`) and
    /// `x-kubernetes-map-type: atomic`.
    Schema(&'a Value),
    /// A whole custom resource: its standard metadata, the rest by its schema.
    CustomRoot(&'a Value),
}

/// A list with merge semantics.
#[derive(Debug, Clone, Copy)]
pub struct ListShape<'a> {
    /// How server-side apply treats it.
    pub apply: ListType<'a>,
    /// How a strategic merge patch treats it.
    pub patch: PatchStrategy,
    /// The shape of each item.
    pub item: Shape<'a>,
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ListType<'a> {
    /// Replaced whole.
    Atomic,
    /// A set of scalars.
    Set,
    /// Items identified by these key fields, each with its default when the item omits it.
    Map(&'a [(&'a str, Option<&'a str>)]),
    /// Items identified by the key fields a schema names (`x-kubernetes-list-map-keys`),
    /// with the defaults of the item schema's properties.
    SchemaMap {
        /// The key names.
        keys: &'a [Value],
        /// The items' schema.
        item: &'a Value,
    },
}

impl ListType<'_> {
    /// The key fields and their defaults.
    pub fn keys(&self) -> Vec<(String, Option<Value>)> {
        match self {
            ListType::Map(keys) => keys
                .iter()
                .map(|(k, d)| ((*k).to_owned(), d.map(|d| Value::String(d.to_owned()))))
                .collect(),
            ListType::SchemaMap { keys, item } => keys
                .iter()
                .filter_map(Value::as_str)
                .map(|k| {
                    let default = item
                        .get("properties")
                        .and_then(|p| p.get(k))
                        .and_then(|p| p.get("default"))
                        .cloned();
                    (k.to_owned(), default)
                })
                .collect(),
            ListType::Atomic | ListType::Set => Vec::new(),
        }
    }
}

/// `patchStrategy` (with `patchMergeKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchStrategy {
    /// The patch's list replaces the object's.
    Replace,
    /// Lists of scalars are merged as sets.
    MergePrimitives,
    /// Items are merged by this key.
    MergeKey(&'static str),
}

impl<'a> Shape<'a> {
    /// The shape of field `name` of an object of this shape.
    pub fn field(self, name: &str) -> Shape<'a> {
        match self {
            Shape::Struct(fields) => fields
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Shape::Plain, |(_, s)| *s),
            Shape::Deduced => Shape::Deduced,
            Shape::Atomic => Shape::Atomic,
            Shape::Plain | Shape::List(_) => Shape::Plain,
            Shape::CustomRoot(_) if name == "metadata" => OBJECT_META,
            Shape::Schema(s) | Shape::CustomRoot(s) => {
                match s.get("properties").and_then(|p| p.get(name)) {
                    Some(p) => Shape::Schema(p),
                    None => match s.get("additionalProperties") {
                        Some(a) if a.is_object() => Shape::Schema(a),
                        _ => Shape::Deduced,
                    },
                }
            }
        }
    }

    /// Whether `name` is a declared field (not a key of a map) of an object of this shape.
    pub fn declares(self, name: &str) -> bool {
        match self {
            Shape::Deduced => false,
            Shape::Schema(s) | Shape::CustomRoot(s) => {
                s.get("properties").and_then(|p| p.get(name)).is_some()
                    || (matches!(self, Shape::CustomRoot(_))
                        && matches!(name, "apiVersion" | "kind" | "metadata"))
            }
            _ => true,
        }
    }

    /// Whether values of this shape are replaced and owned whole.
    pub fn is_atomic(self) -> bool {
        match self {
            Shape::Atomic => true,
            Shape::Schema(s) => {
                s.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
            }
            _ => false,
        }
    }

    /// The list semantics of a value of this shape, if it is a list with any.
    pub fn list(self) -> Option<ListShape<'a>> {
        match self {
            Shape::List(l) => Some(*l),
            Shape::Schema(s) if s.get("items").is_some() => {
                let item = s.get("items").unwrap_or(&Value::Null);
                let apply = match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("set") => ListType::Set,
                    Some("map") => ListType::SchemaMap {
                        keys: s
                            .get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map_or(&[], Vec::as_slice),
                        item,
                    },
                    _ => ListType::Atomic,
                };
                Some(ListShape {
                    apply,
                    patch: PatchStrategy::Replace,
                    item: Shape::Schema(item),
                })
            }
            _ => None,
        }
    }
}

const fn keyed(
    key: &'static str,
    keys: &'static [(&'static str, Option<&'static str>)],
    item: Shape<'static>,
) -> ListShape<'static> {
    ListShape {
        apply: ListType::Map(keys),
        patch: PatchStrategy::MergeKey(key),
        item,
    }
}

const BY_NAME: &[(&str, Option<&str>)] = &[("name", None)];
const BY_TYPE: &[(&str, Option<&str>)] = &[("type", None)];
const BY_IP: &[(&str, Option<&str>)] = &[("ip", None)];

/// A list that is a set for both (`patchStrategy: merge`, `+listType=set`).
const MERGED_SET: ListShape<'static> = ListShape {
    apply: ListType::Set,
    patch: PatchStrategy::MergePrimitives,
    item: Shape::Plain,
};
/// `+listType=set` without a patch strategy: a set for apply, replaced by a patch.
const APPLY_SET: ListShape<'static> = ListShape {
    apply: ListType::Set,
    patch: PatchStrategy::Replace,
    item: Shape::Plain,
};
const CONDITIONS: ListShape<'static> = keyed("type", BY_TYPE, Shape::Plain);

const OWNER_REFERENCES: ListShape<'static> = keyed("uid", &[("uid", None)], Shape::Atomic);

/// `ObjectMeta`.
pub const OBJECT_META: Shape<'static> = Shape::Struct(&[
    ("finalizers", Shape::List(&MERGED_SET)),
    ("ownerReferences", Shape::List(&OWNER_REFERENCES)),
    ("managedFields", Shape::Atomic),
]);

const ENV_VAR: Shape<'static> = Shape::Struct(&[(
    "valueFrom",
    Shape::Struct(&[
        ("configMapKeyRef", Shape::Atomic),
        ("secretKeyRef", Shape::Atomic),
        ("fieldRef", Shape::Atomic),
        ("resourceFieldRef", Shape::Atomic),
    ]),
)]);

const ENV: ListShape<'static> = keyed("name", BY_NAME, ENV_VAR);
const CONTAINER_PORTS: ListShape<'static> = keyed(
    "containerPort",
    &[("containerPort", None), ("protocol", Some("TCP"))],
    Shape::Plain,
);
const VOLUME_MOUNTS: ListShape<'static> = keyed("mountPath", &[("mountPath", None)], Shape::Plain);
const VOLUME_DEVICES: ListShape<'static> =
    keyed("devicePath", &[("devicePath", None)], Shape::Plain);
const RESOURCE_CLAIMS: ListShape<'static> = ListShape {
    apply: ListType::Map(BY_NAME),
    patch: PatchStrategy::Replace,
    item: Shape::Plain,
};

const CONTAINER: Shape<'static> = Shape::Struct(&[
    ("env", Shape::List(&ENV)),
    ("ports", Shape::List(&CONTAINER_PORTS)),
    ("volumeMounts", Shape::List(&VOLUME_MOUNTS)),
    ("volumeDevices", Shape::List(&VOLUME_DEVICES)),
    (
        "resources",
        Shape::Struct(&[("claims", Shape::List(&RESOURCE_CLAIMS))]),
    ),
]);

const CONTAINERS: ListShape<'static> = keyed("name", BY_NAME, CONTAINER);
const VOLUMES: ListShape<'static> = keyed("name", BY_NAME, Shape::Plain);
const IMAGE_PULL_SECRETS: ListShape<'static> = keyed("name", BY_NAME, Shape::Atomic);
const HOST_ALIASES: ListShape<'static> = keyed("ip", BY_IP, Shape::Plain);
const TOPOLOGY_SPREAD: ListShape<'static> = keyed(
    "topologyKey",
    &[("topologyKey", None), ("whenUnsatisfiable", None)],
    Shape::Plain,
);
const NAMED: ListShape<'static> = keyed("name", BY_NAME, Shape::Plain);

/// `PodSpec`.
pub const POD_SPEC: Shape<'static> = Shape::Struct(&[
    ("containers", Shape::List(&CONTAINERS)),
    ("initContainers", Shape::List(&CONTAINERS)),
    ("ephemeralContainers", Shape::List(&CONTAINERS)),
    ("volumes", Shape::List(&VOLUMES)),
    ("imagePullSecrets", Shape::List(&IMAGE_PULL_SECRETS)),
    ("hostAliases", Shape::List(&HOST_ALIASES)),
    ("topologySpreadConstraints", Shape::List(&TOPOLOGY_SPREAD)),
    ("schedulingGates", Shape::List(&NAMED)),
    ("resourceClaims", Shape::List(&NAMED)),
    ("nodeSelector", Shape::Atomic),
]);

const IPS: ListShape<'static> = keyed("ip", BY_IP, Shape::Plain);

const POD_STATUS: Shape<'static> = Shape::Struct(&[
    ("conditions", Shape::List(&CONDITIONS)),
    ("podIPs", Shape::List(&IPS)),
    ("hostIPs", Shape::List(&IPS)),
    ("resourceClaimStatuses", Shape::List(&NAMED)),
]);

const POD_TEMPLATE_SPEC: Shape<'static> =
    Shape::Struct(&[("metadata", OBJECT_META), ("spec", POD_SPEC)]);

/// Job conditions: merged by type in a patch, atomic for apply (`+listType=atomic`).
const JOB_CONDITIONS: ListShape<'static> = ListShape {
    apply: ListType::Atomic,
    patch: PatchStrategy::MergeKey("type"),
    item: Shape::Plain,
};

const JOB_SPEC: Shape<'static> =
    Shape::Struct(&[("selector", Shape::Atomic), ("template", POD_TEMPLATE_SPEC)]);

const JOB_STATUS: Shape<'static> = Shape::Struct(&[
    ("conditions", Shape::List(&JOB_CONDITIONS)),
    (
        "uncountedTerminatedPods",
        Shape::Struct(&[
            ("succeeded", Shape::List(&APPLY_SET)),
            ("failed", Shape::List(&APPLY_SET)),
        ]),
    ),
]);

const SERVICE_ACCOUNT_SECRETS: ListShape<'static> = keyed("name", BY_NAME, Shape::Atomic);

const ADDRESSES: ListShape<'static> = keyed("type", BY_TYPE, Shape::Plain);
const NODE_SPEC: Shape<'static> = Shape::Struct(&[("podCIDRs", Shape::List(&MERGED_SET))]);
const NODE_STATUS: Shape<'static> = Shape::Struct(&[
    ("addresses", Shape::List(&ADDRESSES)),
    ("conditions", Shape::List(&CONDITIONS)),
]);

const NAMESPACE_STATUS: Shape<'static> = Shape::Struct(&[("conditions", Shape::List(&CONDITIONS))]);

/// The shape of a whole object of a built-in kind, `None` for kinds the table does not
/// know (custom resources).
pub fn root(group: &str, kind: &str) -> Option<Shape<'static>> {
    let shape = match (group, kind) {
        ("", "Pod") => Shape::Struct(&[
            ("metadata", OBJECT_META),
            ("spec", POD_SPEC),
            ("status", POD_STATUS),
        ]),
        ("batch", "Job") => Shape::Struct(&[
            ("metadata", OBJECT_META),
            ("spec", JOB_SPEC),
            ("status", JOB_STATUS),
        ]),
        ("", "ConfigMap" | "Secret") => Shape::Struct(&[("metadata", OBJECT_META)]),
        ("", "ServiceAccount") => Shape::Struct(&[
            ("metadata", OBJECT_META),
            ("secrets", Shape::List(&SERVICE_ACCOUNT_SECRETS)),
        ]),
        ("", "Node") => Shape::Struct(&[
            ("metadata", OBJECT_META),
            ("spec", NODE_SPEC),
            ("status", NODE_STATUS),
        ]),
        ("", "Namespace") => {
            Shape::Struct(&[("metadata", OBJECT_META), ("status", NAMESPACE_STATUS)])
        }
        ("", "Event") => Shape::Struct(&[
            ("metadata", OBJECT_META),
            ("involvedObject", Shape::Atomic),
            ("related", Shape::Atomic),
        ]),
        ("events.k8s.io", "Event") => Shape::Struct(&[
            ("metadata", OBJECT_META),
            ("regarding", Shape::Atomic),
            ("related", Shape::Atomic),
        ]),
        (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        ) => Shape::Struct(&[("metadata", OBJECT_META), ("roleRef", Shape::Atomic)]),
        _ => return None,
    };
    Some(shape)
}

/// The shape of a whole object: the built-in table; for other kinds (custom resources)
/// their schema, or [`Shape::Deduced`] content when they have none.
pub fn root_or_custom<'a>(group: &str, kind: &str, schema: Option<&'a Value>) -> Shape<'a> {
    if let Some(shape) = root(group, kind) {
        return shape;
    }
    match schema {
        Some(s) => Shape::CustomRoot(s),
        None => Shape::Struct(&[
            ("metadata", OBJECT_META),
            ("spec", Shape::Deduced),
            ("status", Shape::Deduced),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ports_merge_by_port_and_apply_by_port_and_protocol() {
        let pod = root("", "Pod").unwrap();
        let ports = pod
            .field("spec")
            .field("containers")
            .list()
            .unwrap()
            .item
            .field("ports")
            .list()
            .unwrap();
        assert_eq!(ports.patch, PatchStrategy::MergeKey("containerPort"));
        assert_eq!(
            ports.apply,
            ListType::Map(&[("containerPort", None), ("protocol", Some("TCP"))])
        );
        let job = root("batch", "Job").unwrap();
        let tolerations = job
            .field("spec")
            .field("template")
            .field("spec")
            .field("tolerations");
        assert!(tolerations.list().is_none());
        let conditions = job.field("status").field("conditions").list().unwrap();
        assert_eq!(conditions.apply, ListType::Atomic);
        assert!(root("example.com", "Widget").is_none());
    }
}
