//! A harness for operator authors: seed objects from YAML, wait for a condition on an
//! object, count requests in the journal, and run with a fault plan (given to the builder,
//! or attached after seeding with [`attach_faults`]).
//!
//! ```
//! use std::time::Duration;
//!
//! use cmdreporter_fake_cluster::FakeCluster;
//! use cmdreporter_fake_cluster::faults::{Fault, FaultPlan};
//! use cmdreporter_fake_cluster::harness::{self, RequestCounts};
//! use k8s_openapi::api::core::v1::{ConfigMap, Secret};
//! use kube::api::{Api, Patch, PatchParams, PostParams};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Half the creates of Secrets fail with 503, the same ones for the same seed.
//! let plan = FaultPlan::new(7).rule(Some("create"), Some("secrets"), 0.5, Fault::Status(503));
//! let cluster = FakeCluster::builder().faults(plan).build().await?;
//!
//! // Seed what the test starts from: a definition and objects of its kind may share a file.
//! let seeded = harness::seed_yaml(&cluster, r#"
//! apiVersion: apiextensions.k8s.io/v1
//! kind: CustomResourceDefinition
//! metadata: {name: widgets.example.com}
//! spec:
//!   group: example.com
//!   scope: Namespaced
//!   names: {plural: widgets, kind: Widget}
//!   versions:
//!   - name: v1
//!     served: true
//!     storage: true
//!     schema:
//!       openAPIV3Schema:
//!         type: object
//!         properties:
//!           spec: {type: object, properties: {size: {type: integer}}}
//! ---
//! apiVersion: example.com/v1
//! kind: Widget
//! metadata: {name: w1, namespace: default}
//! spec: {size: 3}
//! ---
//! apiVersion: v1
//! kind: ConfigMap
//! metadata: {name: settings}
//! data: {mode: fast}
//! "#)?;
//! assert_eq!(seeded.len(), 3);
//! assert_eq!(seeded[1]["spec"]["size"], 3);
//!
//! // Something (usually the operator under test) changes an object later...
//! let cms: Api<ConfigMap> = Api::default_namespaced(cluster.client());
//! let writer = cms.clone();
//! let patched = tokio::spawn(async move {
//!     tokio::time::sleep(Duration::from_secs(5)).await;
//!     let ready = serde_json::json!({"data": {"ready": "yes"}});
//!     writer.patch("settings", &PatchParams::default(), &Patch::Merge(ready)).await
//! });
//! // ...and the test waits for the state it expects, on a watch, with a deadline.
//! let cm = harness::wait_for(&cms, "settings", Duration::from_secs(60), |cm: &ConfigMap| {
//!     cm.data.as_ref().is_some_and(|d| d.get("ready").is_some_and(|v| v == "yes"))
//! })
//! .await?;
//! assert_eq!(cm.data.unwrap()["mode"], "fast");
//! patched.await??;
//!
//! // The fault plan acts on the code under test's requests, and says what it did.
//! let secrets: Api<Secret> = Api::default_namespaced(cluster.client());
//! let mut refused = 0;
//! for i in 0..4 {
//!     let mut s = Secret::default();
//!     s.metadata.name = Some(format!("s{i}"));
//!     if secrets.create(&PostParams::default(), &s).await.is_err() {
//!         refused += 1;
//!     }
//! }
//! assert_eq!(cluster.injected_faults().len(), refused);
//!
//! // What was asked of the API server, by verb and resource.
//! let counts = RequestCounts::of(cluster.journal());
//! assert_eq!(counts.get("patch", "configmaps"), 1);
//! assert_eq!(counts.get("create", "secrets"), 4);
//! assert!(counts.get("watch", "configmaps") >= 1);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use crate::json::Value;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use serde::de::DeserializeOwned;

use crate::FakeCluster;
use crate::journal::Journal;
use crate::resources::{Registry, well_known};
use crate::status::ApiError;

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A YAML document could not be parsed.
    #[error("YAML: {0}")]
    Yaml(String),
    /// A document is not a Kubernetes object: a field is missing.
    #[error("document {index}: {field} is required")]
    MissingField {
        /// The document's index in the input, from 0.
        index: usize,
        /// The missing field (`apiVersion`, `kind`, `metadata.name`).
        field: &'static str,
    },
    /// A document's kind is not served and no earlier document defines it.
    #[error("document {index}: no resource serves kind {kind:?} in {api_version:?}")]
    UnknownKind {
        /// The document's index in the input, from 0.
        index: usize,
        /// Its `apiVersion`.
        api_version: String,
        /// Its `kind`.
        kind: String,
    },
    /// The API server refused a document.
    #[error("document {index}: {source}")]
    Api {
        /// The document's index in the input, from 0.
        index: usize,
        /// The server's answer.
        #[source]
        source: Box<ApiError>,
    },
    /// The condition did not hold within the time given.
    #[error("{name}: condition not met within {after:?}")]
    Timeout {
        /// The object waited on.
        name: String,
        /// How long the wait lasted.
        after: Duration,
    },
    /// The cluster applies a fault plan already (one per cluster).
    #[error("a fault plan is attached already")]
    FaultsAttached,
    /// The watch behind a wait failed.
    #[error("waiting for {name}: {source}")]
    Watch {
        /// The object waited on.
        name: String,
        /// The watch's error.
        #[source]
        source: Box<kube::runtime::wait::Error>,
    },
}

/// `(group, kind)` that a CustomResourceDefinition document defines.
fn defined_kind(doc: &Value) -> Option<(String, String)> {
    let group = doc.pointer("/spec/group")?.as_str()?;
    let kind = doc.pointer("/spec/names/kind")?.as_str()?;
    Some((group.to_owned(), kind.to_owned()))
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// Checks every document before any is created: each has `apiVersion`, `kind` and
/// `metadata.name` (or `generateName`), and a kind that is served or defined by an
/// earlier CustomResourceDefinition in the input.
fn check(registry: &Registry, docs: &[Value]) -> Result<(), HarnessError> {
    let mut defined: Vec<(String, String)> = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let field = |f: &'static str| HarnessError::MissingField { index, field: f };
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| field("apiVersion"))?;
        let kind = doc
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| field("kind"))?;
        if doc.pointer("/metadata/name").is_none()
            && doc.pointer("/metadata/generateName").is_none()
        {
            return Err(field("metadata.name"));
        }
        let served = registry.by_kind(api_version, kind).is_some()
            || defined
                .iter()
                .any(|(g, k)| g == group_of(api_version) && k == kind);
        if !served {
            return Err(HarnessError::UnknownKind {
                index,
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            });
        }
        if registry.by_kind(api_version, kind).as_ref() == Some(well_known::crds())
            && let Some(d) = defined_kind(doc)
        {
            defined.push(d);
        }
    }
    Ok(())
}

/// Creates the objects of a multi-document YAML (documents separated by `---`; empty
/// ones skipped), in order, through admission as a client's create would. Namespaced
/// objects go to their `metadata.namespace`, or `default`. A CustomResourceDefinition is
/// served as soon as it is created, so objects of its kind may follow it in the same
/// input.
///
/// Every document is checked first ([`HarnessError::MissingField`],
/// [`HarnessError::UnknownKind`]): bad input creates nothing. The objects as stored are
/// returned.
pub fn seed_yaml(cluster: &FakeCluster, yaml: &str) -> Result<Vec<Arc<Value>>, HarnessError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple::<Value>(yaml)
        .map_err(|e| HarnessError::Yaml(e.to_string()))?
        .into_iter()
        .filter(|d| !d.is_null())
        .collect();
    seed(cluster, docs)
}

/// [`seed_yaml`] for objects already parsed (JSON values).
pub fn seed(cluster: &FakeCluster, docs: Vec<Value>) -> Result<Vec<Arc<Value>>, HarnessError> {
    let registry = cluster.store().resources();
    check(registry, &docs)?;
    let mut out = Vec::with_capacity(docs.len());
    for (index, doc) in docs.into_iter().enumerate() {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        let def =
            registry
                .by_kind(&api_version, &kind)
                .ok_or_else(|| HarnessError::UnknownKind {
                    index,
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                })?;
        let ns = doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let doc = crate::conversion::to_storage(&def, doc);
        let def = registry.storage_of(&def);
        let created = cluster
            .api()
            .create(&def, &ns, doc)
            .map_err(|e| HarnessError::Api {
                index,
                source: Box::new(e),
            })?;
        out.push(created);
    }
    Ok(out)
}

/// Attaches a fault plan to a running cluster that has none (see [`crate::faults`]): a
/// test can seed its objects first and have only the code under test meet the faults.
/// The plan's draws start with the next request.
pub fn attach_faults(
    cluster: &FakeCluster,
    plan: crate::faults::FaultPlan,
) -> Result<(), HarnessError> {
    cluster
        .api()
        .faults
        .set(crate::faults::Faults::new(plan))
        .map_err(|_| HarnessError::FaultsAttached)
}

/// Waits until the object `name` of `api` exists and satisfies `cond`, on a watch (no
/// polling), for at most `timeout`. The timeout is tokio time: under paused time it costs
/// nothing and passes only when nothing else can happen first.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    cond: impl Fn(&K) -> bool,
) -> Result<K, HarnessError>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let wait = await_condition(api.clone(), name, move |obj: Option<&K>| {
        obj.is_some_and(&cond)
    });
    match tokio::time::timeout(timeout, wait).await {
        Err(_) => Err(HarnessError::Timeout {
            name: name.to_owned(),
            after: timeout,
        }),
        Ok(Err(e)) => Err(HarnessError::Watch {
            name: name.to_owned(),
            source: Box::new(e),
        }),
        Ok(Ok(Some(obj))) => Ok(obj),
        Ok(Ok(None)) => Err(HarnessError::Timeout {
            name: name.to_owned(),
            after: timeout,
        }),
    }
}

/// Waits until the object is gone (or was never there), on a watch, for at most
/// `timeout`.
pub async fn wait_deleted<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
) -> Result<(), HarnessError>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let wait = await_condition(api.clone(), name, |obj: Option<&K>| obj.is_none());
    match tokio::time::timeout(timeout, wait).await {
        Err(_) => Err(HarnessError::Timeout {
            name: name.to_owned(),
            after: timeout,
        }),
        Ok(Err(e)) => Err(HarnessError::Watch {
            name: name.to_owned(),
            source: Box::new(e),
        }),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Requests in the journal counted by verb and resource.
///
/// The resource is the plural of the path, with its group for grouped resources and its
/// subresource after a slash: `configmaps`, `jobs.batch`, `widgets.example.com/status`,
/// `pods/log`. Requests outside resources (discovery) count under their path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(BTreeMap<(String, String), usize>);

impl RequestCounts {
    /// Counts the journal as it is now.
    pub fn of(journal: &Journal) -> Self {
        let mut counts = BTreeMap::new();
        for e in journal.entries() {
            *counts
                .entry((e.verb.clone(), resource_of(&e.path)))
                .or_insert(0) += 1;
        }
        Self(counts)
    }

    /// Requests with this verb on this resource.
    pub fn get(&self, verb: &str, resource: &str) -> usize {
        self.0
            .get(&(verb.to_owned(), resource.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Requests on this resource, any verb.
    pub fn on(&self, resource: &str) -> usize {
        self.0
            .iter()
            .filter(|((_, r), _)| r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request counted.
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }

    /// The counts, by (verb, resource).
    pub fn iter(&self) -> impl Iterator<Item = (&(String, String), &usize)> {
        self.0.iter()
    }
}

/// The resource a request path names (see [`RequestCounts`]).
pub fn resource_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _v, rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return path.to_owned(),
    };
    let rest = match rest {
        ["namespaces", _ns, plural, more @ ..] => {
            let mut v = vec![*plural];
            v.extend_from_slice(more);
            v
        }
        other => other.to_vec(),
    };
    let Some(plural) = rest.first() else {
        return path.to_owned();
    };
    let mut out = if group.is_empty() {
        (*plural).to_owned()
    } else {
        format!("{plural}.{group}")
    };
    if let Some(sub) = rest.get(2) {
        out.push('/');
        out.push_str(sub);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_resource() {
        assert_eq!(
            resource_of("/api/v1/namespaces/default/configmaps/x?fieldManager=a"),
            "configmaps"
        );
        assert_eq!(resource_of("/api/v1/namespaces/default"), "namespaces");
        assert_eq!(resource_of("/api/v1/namespaces/d/pods/p/log"), "pods/log");
        assert_eq!(resource_of("/apis/batch/v1/jobs"), "jobs.batch");
        assert_eq!(
            resource_of("/apis/example.com/v1/namespaces/d/widgets/w/status"),
            "widgets.example.com/status"
        );
        assert_eq!(resource_of("/apis"), "/apis");
    }

    #[test]
    fn bad_documents_are_refused_before_anything_is_created() {
        let registry = Registry::default();
        let docs = [crate::json::json!({"apiVersion": "v1", "metadata": {"name": "x"}})];
        assert!(matches!(
            check(&registry, &docs),
            Err(HarnessError::MissingField {
                index: 0,
                field: "kind"
            })
        ));
        let docs = [
            crate::json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
        ];
        assert!(matches!(
            check(&registry, &docs),
            Err(HarnessError::UnknownKind { index: 0, .. })
        ));
        let crd = crate::json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}}});
        assert!(check(&registry, &[crd, docs[0].clone()]).is_ok());
    }
}
