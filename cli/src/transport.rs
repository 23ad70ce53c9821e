//! The transports by name: the operator side that `cmdreporter run` receives with.

use std::sync::Arc;

use cmdreporter_core::ResultChannel;

/// Every transport name `--transport` knows.
pub const KNOWN: &[&str] = &["configmap", "logs"];

/// Why a transport cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No transport has this name.
    #[error("unknown transport {0:?} (known: configmap, logs)")]
    Unknown(String),
}

/// The operator side of the transport called `name`, receiving with `client`: one line
/// switches the transport of a [`JobRunner`](cmdreporter_core::JobRunner).
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
        cmdreporter_k8s_logs::TRANSPORT => {
            Ok(Arc::new(cmdreporter_k8s_logs::LogsChannel::new(client)))
        }
        _ => Err(TransportError::Unknown(name.to_owned())),
    }
}

/// Checks a transport name without building anything.
pub fn check(name: &str) -> Result<(), TransportError> {
    match name {
        cmdreporter_configmap::TRANSPORT | cmdreporter_k8s_logs::TRANSPORT => Ok(()),
        _ => Err(TransportError::Unknown(name.to_owned())),
    }
}
