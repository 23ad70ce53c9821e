//! Registering custom resource types in code: from `#[derive(CustomResource)]` types
//! ([`kube::CustomResourceExt`]), from a CustomResourceDefinition, or from any
//! [`kube::Resource`] with a schema.

use std::sync::Arc;

use crate::json::{Value, json};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::resources::well_known;
use crate::status::ApiError;
use crate::{Builder, FakeCluster};

fn to_json(crd: &CustomResourceDefinition) -> Result<Value, ApiError> {
    crate::json::to_value(crd)
        .map_err(|e| ApiError::internal(format!("CustomResourceDefinition to JSON: {e}")))
}

/// A CustomResourceDefinition for `K` with one version, `schema` as its
/// `openAPIV3Schema` and a `status` subresource.
pub fn definition_for<K>(namespaced: bool, schema: Value) -> Value
where
    K: kube::Resource<DynamicType = ()>,
{
    let (group, version, kind, plural) =
        (K::group(&()), K::version(&()), K::kind(&()), K::plural(&()));
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{"name": version, "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": schema},
                          "subresources": {"status": {}}}],
        },
    })
}

impl FakeCluster {
    /// Serves the custom resource of `K`, a type from `#[derive(CustomResource)]`, with the
    /// definition `K::crd()` gives (its schema, subresources and printer columns), as if
    /// the definition had been applied: it is stored, established and discoverable when
    /// this returns.
    ///
    /// ```no_run
    /// # use cmdreporter_fake_cluster::FakeCluster;
    /// # async fn demo<Foo: kube::CustomResourceExt>() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = FakeCluster::builder().build().await?;
    /// cluster.register::<Foo>()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn register<K: kube::CustomResourceExt>(&self) -> Result<Arc<Value>, ApiError> {
        self.register_crd(&K::crd())
    }

    /// Serves the resource a CustomResourceDefinition defines (see
    /// [`FakeCluster::register`]).
    pub fn register_crd(&self, crd: &CustomResourceDefinition) -> Result<Arc<Value>, ApiError> {
        self.register_crd_json(to_json(crd)?)
    }

    /// Serves the resource a CustomResourceDefinition given as JSON defines.
    pub fn register_crd_json(&self, crd: Value) -> Result<Arc<Value>, ApiError> {
        self.api().create(well_known::crds(), "", crd)
    }

    /// Serves `K`, any [`kube::Resource`] with a static type, as a custom resource with
    /// one version, this `openAPIV3Schema` and a `status` subresource (see
    /// [`definition_for`]).
    pub fn register_resource<K>(
        &self,
        namespaced: bool,
        schema: Value,
    ) -> Result<Arc<Value>, ApiError>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        self.register_crd_json(definition_for::<K>(namespaced, schema))
    }
}

impl Builder {
    /// Serves the custom resource of `K` (from `#[derive(CustomResource)]`) from the
    /// start (see [`FakeCluster::register`]).
    pub fn crd<K: kube::CustomResourceExt>(self) -> Self {
        self.crd_definition(K::crd())
    }

    /// Serves the resource this CustomResourceDefinition defines from the start.
    pub fn crd_definition(mut self, crd: CustomResourceDefinition) -> Self {
        self.crds.push(crd);
        self
    }
}
