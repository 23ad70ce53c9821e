//! Lean reads of the objects the operator only looks at: [`Lean<K>`] is a `K` deserialised
//! with only the parts the library reads, so that a watch event or a create response costs
//! no allocation for what nothing looks at.
//!
//! What every lean read leaves out is `metadata.managedFields` (a tree of field sets per
//! writer, the bulk of an object's metadata); the rest of the metadata is read as it is.
//! Per kind:
//! - [`Pod`]: the metadata, the whole `status`, and of the `spec` only `nodeName` (what the
//!   classifier reads to tell a scheduled pod); the spec's containers, volumes and the rest
//!   are left empty.
//! - [`Job`]: the metadata and the `status` (the create response is read for the Job's uid,
//!   a later look for its conditions); the `spec` is left out.
//! - [`ConfigMap`]: the metadata, `data`, `binaryData` and `immutable` (the whole object but
//!   its managed fields).
//! - [`K8sEvent`]: the metadata, `involvedObject`, `reason`, `message`, `type` and `count`.
//!
//! A lean object serialises as the full `K` it wraps (a Job to create is sent whole; its
//! response is read lean).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::{
    ConfigMap, Event as K8sEvent, ObjectReference, Pod, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `K` read with only the parts the library looks at (see the [module](self) docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lean<K>(pub K);

/// Reads objects of one kind from JSON text, one after the other (the events of one watch):
/// it may keep what it learnt from one object to read the next faster.
pub type JsonReader<K> = Box<dyn FnMut(&str) -> serde_json::Result<K> + Send>;

/// How a kind is read lean.
pub trait LeanRead: Sized {
    /// Reads `Self` from `d`, skipping what the library does not look at.
    fn read_lean<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;

    /// A reader of successive objects' JSON text ([`watch_lean`](crate::watch::watch_lean)
    /// reads each event's object with it): the same as [`read_lean`](Self::read_lean), value
    /// and errors. The default reads each with `read_lean`.
    fn json_reader() -> JsonReader<Self>
    where
        Self: 'static,
    {
        Box::new(|json| serde_json::from_str::<Lean<Self>>(json).map(|l| l.0))
    }
}

impl<'de, K: LeanRead> Deserialize<'de> for Lean<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        K::read_lean(d).map(Lean)
    }
}

impl<K: Serialize> Serialize for Lean<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<K: k8s_openapi::Resource> k8s_openapi::Resource for Lean<K> {
    const API_VERSION: &'static str = K::API_VERSION;
    const GROUP: &'static str = K::GROUP;
    const KIND: &'static str = K::KIND;
    const VERSION: &'static str = K::VERSION;
    const URL_PATH_SEGMENT: &'static str = K::URL_PATH_SEGMENT;
    type Scope = K::Scope;
}

impl<K: k8s_openapi::Metadata<Ty = ObjectMeta>> k8s_openapi::Metadata for Lean<K> {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        self.0.metadata()
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        self.0.metadata_mut()
    }
}

/// `ObjectMeta` without `managedFields` (and the deprecated, never set `selfLink`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta {
    annotations: Option<BTreeMap<String, String>>,
    creation_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    deletion_timestamp: Option<Time>,
    finalizers: Option<Vec<String>>,
    generate_name: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    namespace: Option<String>,
    owner_references: Option<Vec<OwnerReference>>,
    resource_version: Option<String>,
    uid: Option<String>,
}

impl From<Meta> for ObjectMeta {
    fn from(m: Meta) -> Self {
        Self {
            annotations: m.annotations,
            creation_timestamp: m.creation_timestamp,
            deletion_grace_period_seconds: m.deletion_grace_period_seconds,
            deletion_timestamp: m.deletion_timestamp,
            finalizers: m.finalizers,
            generate_name: m.generate_name,
            generation: m.generation,
            labels: m.labels,
            managed_fields: None,
            name: m.name,
            namespace: m.namespace,
            owner_references: m.owner_references,
            resource_version: m.resource_version,
            self_link: None,
            uid: m.uid,
        }
    }
}

/// Reads `metadata` as [`Lean`] does: all of it but `managedFields`.
fn meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    Option::<Meta>::deserialize(d).map(|m| m.unwrap_or_default().into())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodSpecView {
    pub(crate) node_name: Option<String>,
}

#[derive(Deserialize)]
struct PodView {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    spec: Option<PodSpecView>,
    status: Option<PodStatus>,
}

impl LeanRead for Pod {
    fn read_lean<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = PodView::deserialize(d)?;
        Ok(Pod {
            metadata: v.metadata,
            spec: v.spec.map(|s| PodSpec {
                node_name: s.node_name,
                ..PodSpec::default()
            }),
            status: v.status,
        })
    }

    /// Skips the `spec` of a pod when its text is that of the previous pod read: a pod's
    /// spec is the bulk of it (about 2.7 KB of 5) and, but for its binding, the same in
    /// every event (see the crate's `lean_json` module).
    fn json_reader() -> JsonReader<Self> {
        let mut reader = crate::lean_json::PodReader::default();
        Box::new(move |json| reader.read(json))
    }
}

#[derive(Deserialize)]
struct JobView {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    status: Option<JobStatus>,
}

impl LeanRead for Job {
    fn read_lean<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = JobView::deserialize(d)?;
        Ok(Job {
            metadata: v.metadata,
            spec: None,
            status: v.status,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigMapView {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    binary_data: Option<BTreeMap<String, ByteString>>,
    data: Option<BTreeMap<String, String>>,
    immutable: Option<bool>,
}

impl LeanRead for ConfigMap {
    fn read_lean<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = ConfigMapView::deserialize(d)?;
        Ok(ConfigMap {
            metadata: v.metadata,
            binary_data: v.binary_data,
            data: v.data,
            immutable: v.immutable,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventView {
    #[serde(default, deserialize_with = "meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    involved_object: ObjectReference,
    reason: Option<String>,
    message: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    count: Option<i32>,
}

impl LeanRead for K8sEvent {
    fn read_lean<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = EventView::deserialize(d)?;
        Ok(K8sEvent {
            metadata: v.metadata,
            involved_object: v.involved_object,
            reason: v.reason,
            message: v.message,
            type_: v.type_,
            count: v.count,
            ..K8sEvent::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meta_json() -> serde_json::Value {
        json!({"name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
            "labels": {"a": "b"}, "annotations": {"c": "d"},
            "creationTimestamp": "2026-01-01T00:00:00Z", "deletionTimestamp": "2026-01-01T00:00:05Z",
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "ju"}],
            "managedFields": [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]})
    }

    #[test]
    fn a_lean_pod_keeps_metadata_status_and_node_name() {
        let v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta_json(),
            "spec": {"nodeName": "n1", "containers": [{"name": "cmd", "image": "x"}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "cmd", "image": "x",
                "imageID": "sha", "ready": true, "restartCount": 0, "state": {"running": {}}}]}});
        let full: Pod = serde_json::from_value(v.clone()).unwrap();
        let lean: Lean<Pod> = serde_json::from_value(v).unwrap();
        let mut expected_meta = full.metadata.clone();
        expected_meta.managed_fields = None;
        assert_eq!(lean.0.metadata, expected_meta);
        assert_eq!(lean.0.status, full.status);
        let spec = lean.0.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert!(spec.containers.is_empty());
    }

    #[test]
    fn a_lean_pod_without_spec_or_status_stays_without() {
        let lean: Lean<Pod> = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        assert!(lean.0.spec.is_none() && lean.0.status.is_none());
        assert_eq!(lean.0.metadata.name.as_deref(), Some("p"));
    }

    #[test]
    fn a_lean_job_is_its_metadata_and_status_and_serialises_whole() {
        let v = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta_json(),
            "spec": {"template": {"spec": {"containers": []}}}, "status": {"active": 1}});
        let lean: Lean<Job> = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(lean.0.metadata.uid.as_deref(), Some("u1"));
        assert!(lean.0.metadata.managed_fields.is_none());
        assert!(lean.0.spec.is_none());
        assert_eq!(lean.0.status.and_then(|s| s.active), Some(1));
        let full: Job = serde_json::from_value(v).unwrap();
        assert_eq!(
            serde_json::to_value(Lean(full.clone())).unwrap(),
            serde_json::to_value(full).unwrap()
        );
    }

    #[test]
    fn a_lean_config_map_keeps_all_but_managed_fields() {
        let v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta_json(),
            "data": {"stdout": "hi"}, "binaryData": {"stderr": "AAE="}, "immutable": true});
        let full: ConfigMap = serde_json::from_value(v.clone()).unwrap();
        let lean: Lean<ConfigMap> = serde_json::from_value(v).unwrap();
        let mut expected = full;
        expected.metadata.managed_fields = None;
        assert_eq!(lean.0, expected);
    }

    #[test]
    fn a_lean_event_keeps_what_the_runner_reads() {
        let v = json!({"apiVersion": "v1", "kind": "Event", "metadata": meta_json(),
            "involvedObject": {"kind": "Job", "uid": "ju"}, "reason": "FailedCreate",
            "message": "forbidden", "type": "Warning", "count": 2, "source": {"component": "job-controller"}});
        let lean: Lean<K8sEvent> = serde_json::from_value(v).unwrap();
        assert_eq!(lean.0.involved_object.uid.as_deref(), Some("ju"));
        assert_eq!(lean.0.reason.as_deref(), Some("FailedCreate"));
        assert_eq!(lean.0.message.as_deref(), Some("forbidden"));
        assert_eq!(lean.0.count, Some(2));
    }
}
