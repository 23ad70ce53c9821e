//! The transports by name: the operator side that `cmdreporter run` receives with.

use std::sync::Arc;

use cmdreporter_core::ResultChannel;

/// Every transport name `--transport` knows, built or not.
pub const KNOWN: &[&str] = &["configmap", "logs"];

/// Why a transport cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No transport has this name.
    #[error("unknown transport {0:?} (known: configmap, logs)")]
    Unknown(String),
    /// The transport is known but not part of this build yet.
    #[error(
        "transport {0:?} is not available yet: this build of cmdreporter does not include it (use --transport configmap)"
    )]
    NotAvailable(String),
}

/// The operator side of the transport called `name`, receiving with `client`.
///
/// ```
/// # async fn demo(client: kube::Client) {
/// let channel = cmdreporter_cli::transport::channel("configmap", client).unwrap();
/// assert_eq!(channel.name(), "configmap");
/// # }
/// ```
pub fn channel(name: &str, client: kube::Client) -> Result<Arc<dyn ResultChannel>, TransportError> {
    match name {
        cmdreporter_configmap::TRANSPORT => Ok(Arc::new(
            cmdreporter_configmap::ConfigMapChannel::new(client),
        )),
        "logs" => Err(TransportError::NotAvailable(name.to_owned())),
        _ => Err(TransportError::Unknown(name.to_owned())),
    }
}

/// Checks a transport name without building anything.
pub fn check(name: &str) -> Result<(), TransportError> {
    match name {
        cmdreporter_configmap::TRANSPORT => Ok(()),
        "logs" => Err(TransportError::NotAvailable(name.to_owned())),
        _ => Err(TransportError::Unknown(name.to_owned())),
    }
}
