//! The fake cluster's own certificate authority and the TLS configuration of its HTTPS
//! server. A new CA is generated for every cluster; its certificate is what clients put in
//! `certificate-authority-data` (kubeconfig) or mount as `ca.crt` (in-cluster config).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names and addresses the server certificate is valid for: loopback, and the names of the
/// `kubernetes` Service that in-cluster clients use.
pub const SERVER_NAMES: &[&str] = &[
    "127.0.0.1",
    "::1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// Errors creating the CA or the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key or certificate could not be generated.
    #[error("generating a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS server configuration was refused.
    #[error("configuring TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// A CA and a server certificate it signed, ready to serve HTTPS.
pub struct ClusterCa {
    ca_pem: String,
    server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Generates a CA (ECDSA P-256) and a server certificate for [`SERVER_NAMES`].
    pub fn generate() -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "fake-cluster-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(
            SERVER_NAMES
                .iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<_>>(),
        )?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params.signed_by(&server_key, &issuer)?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let chain: Vec<CertificateDer<'static>> =
            vec![server_cert.der().clone(), ca_cert.der().clone()];
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem,
            server_config: Arc::new(config),
        })
    }

    /// The CA certificate, PEM-encoded (the content of `ca.crt`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server's TLS configuration (HTTP/2 and HTTP/1.1 by ALPN).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_a_server_certificate() {
        let ca = ClusterCa::generate().unwrap();
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let other = ClusterCa::generate().unwrap();
        assert_ne!(ca.ca_pem(), other.ca_pem(), "one CA per cluster");
        assert_eq!(
            ca.server_config().alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
