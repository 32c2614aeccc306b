//! How the member reaches the Kubernetes API server: in a pod, with the
//! service account's token and CA; outside, with a URL plus token and CA
//! files, or a kubeconfig. TLS is always verified against the given CA.

use crate::DiscoveryError;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The service account's files in every pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The pod's namespace from the service account's namespace file, if any.
pub fn service_account_namespace() -> Option<String> {
    std::fs::read_to_string(Path::new(SERVICE_ACCOUNT_DIR).join("namespace"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiAccess {
    /// In a pod: `KUBERNETES_SERVICE_HOST`/`PORT`, and the token, CA and
    /// namespace files of the service account.
    InCluster,
    /// An API server URL with a bearer-token file and a CA bundle file.
    /// Missing files default to the service account's.
    Explicit {
        url: String,
        token_file: Option<PathBuf>,
        ca_file: Option<PathBuf>,
    },
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A watch request stays open for minutes; the read timeout must be longer
/// than the server's watch timeout (kube asks for 290 s).
const READ_TIMEOUT: Duration = Duration::from_secs(295);

fn config_error(what: impl std::fmt::Display) -> DiscoveryError {
    DiscoveryError::Config(what.to_string())
}

fn readable(path: &Path, what: &str) -> Result<(), DiscoveryError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| config_error(format!("cannot read the {what} {}: {e}", path.display())))
}

/// Reads a PEM bundle into DER certificates, refusing an empty one (an
/// empty trust store would fail every handshake with a vaguer message).
fn load_ca(path: &Path) -> Result<Vec<Vec<u8>>, DiscoveryError> {
    let pem = std::fs::read(path).map_err(|e| {
        config_error(format!(
            "cannot read the Kubernetes CA file {}: {e}",
            path.display()
        ))
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("CA file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "CA file {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

impl ApiAccess {
    /// A client, the default namespace, and the server URL for messages.
    pub(crate) async fn client(&self) -> Result<(Client, String, String), DiscoveryError> {
        let sa = Path::new(SERVICE_ACCOUNT_DIR);
        let mut config = match self {
            ApiAccess::InCluster => Config::incluster().map_err(|e| {
                config_error(format!(
                    "not running in a Kubernetes pod ({e}); give --kubernetes-master with \
                     --kubernetes-token-file and --kubernetes-ca-file, or --kubeconfig"
                ))
            })?,
            ApiAccess::Explicit {
                url,
                token_file,
                ca_file,
            } => {
                let uri: http::Uri = url
                    .parse()
                    .map_err(|e| config_error(format!("Kubernetes API URL '{url}': {e}")))?;
                if uri.scheme_str() != Some("https") {
                    return Err(config_error(format!(
                        "Kubernetes API URL '{url}' must be https: the token is not sent in clear"
                    )));
                }
                let token = token_file.clone().unwrap_or_else(|| sa.join("token"));
                let ca = ca_file.clone().unwrap_or_else(|| sa.join("ca.crt"));
                readable(&token, "service-account token file")?;
                let mut c = Config::new(uri);
                c.root_cert = Some(load_ca(&ca)?);
                // Re-read periodically, so a rotated CA is picked up.
                c.root_cert_file = Some(ca);
                // Re-read too: projected tokens are rotated by the kubelet.
                c.auth_info.token_file = Some(token.to_string_lossy().into_owned());
                c.default_namespace =
                    service_account_namespace().unwrap_or_else(|| "default".into());
                c
            }
            ApiAccess::Kubeconfig(path) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| config_error(format!("kubeconfig {}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| config_error(format!("kubeconfig {}: {e}", path.display())))?
            }
        };
        if config.accept_invalid_certs {
            return Err(config_error(
                "the kubeconfig turns TLS verification off (insecure-skip-tls-verify); \
                 ferrocast always verifies the API server's certificate",
            ));
        }
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        let server = config.cluster_url.to_string();
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config)
            .map_err(|e| config_error(format!("Kubernetes client for {server}: {e}")))?;
        Ok((client, namespace, server))
    }
}
