//! Custom resources: CustomResourceDefinitions (`apiextensions.k8s.io/v1`) and what serving
//! their resources takes.

use std::sync::Arc;

use serde_json::Value;

/// What one served version of a custom resource carries besides its [`ResourceDef`]
/// fields.
///
/// [`ResourceDef`]: crate::resources::ResourceDef
#[derive(Debug, Clone)]
pub struct CustomVersion {
    /// The version objects are stored at (the one with `storage: true`).
    pub storage_version: String,
    /// The version's `schema.openAPIV3Schema`, if it has one.
    pub schema: Option<Arc<Value>>,
    /// The version's `additionalPrinterColumns`.
    pub printer_columns: Arc<Vec<Value>>,
    /// `subresources.scale`: `specReplicasPath`, `statusReplicasPath`, `labelSelectorPath`.
    pub scale: Option<Arc<Value>>,
}
