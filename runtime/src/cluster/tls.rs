//! TLS between nodes: mutual, on the cluster's own certificate authority.
//!
//! Each node has a certificate and key signed by the cluster's CA, whose
//! certificate every node has too. A node serves only peers that present
//! a certificate of that CA (so a machine without one can neither call
//! nor pull), and calls only peers whose certificate is of that CA and
//! names [`NODE_NAME`]: nodes reach each other by address, and one name
//! for every node (as CockroachDB's node certificates name `node`) keeps
//! certificates valid when addresses change (a pod's, say).
//!
//! gRPC and pulls share the port: after the handshake, the protocol the
//! client asked for (ALPN) tells them apart, `h2` for gRPC and
//! `wray-pull` for a pull (without TLS, a pull's first bytes do).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name every node's certificate carries (a DNS name in its subject
/// alternative names), which the others check.
pub const NODE_NAME: &str = "wray-node";
/// The protocol a pull's connection asks for.
pub(super) const PULL_ALPN: &[u8] = b"wray-pull";
/// The protocol gRPC's connections ask for.
const GRPC_ALPN: &[u8] = b"h2";

/// Where a node's TLS files are: PEM, as `openssl` writes them.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// This node's certificate (and any intermediates), signed by the CA.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The cluster's CA certificate.
    pub ca: PathBuf,
}

/// A node's TLS settings, read once.
pub(crate) struct Tls {
    server: Arc<ServerConfig>,
    grpc: Arc<ClientConfig>,
    pull: Arc<ClientConfig>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

impl Tls {
    /// Reads `files` and makes the settings of both ends.
    pub fn load(files: &TlsFiles) -> Result<Tls, String> {
        let certs = |path: &Path, what: &str| -> Result<Vec<CertificateDer<'static>>, String> {
            let pem = read(path, what)?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the {what} {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "the {what} {} holds no PEM certificate",
                    path.display()
                ));
            }
            Ok(certs)
        };
        let chain = certs(&files.cert, "node certificate")?;
        let key_pem = read(&files.key, "node key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("the node key {}: {e}", files.key.display()))?;
        let mut roots = RootCertStore::empty();
        for ca in certs(&files.ca, "CA certificate")? {
            roots
                .add(ca)
                .map_err(|e| format!("the CA certificate {}: {e}", files.ca.display()))?;
        }
        let roots = Arc::new(roots);
        // ring, not aws-lc-rs (which needs cmake to build): rustls marks
        // ring's provider deprecated only for lacking post-quantum key
        // exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let bad = |e: rustls::Error| format!("TLS: {e}");
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("TLS: {e}"))?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(bad)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("the node certificate and key: {e}"))?;
        server.alpn_protocols = vec![GRPC_ALPN.to_vec(), PULL_ALPN.to_vec()];
        let client = |alpn: &[u8]| -> Result<Arc<ClientConfig>, String> {
            let mut c = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(bad)?
                .with_root_certificates(roots.clone())
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| format!("the node certificate and key: {e}"))?;
            c.alpn_protocols = vec![alpn.to_vec()];
            Ok(Arc::new(c))
        };
        Ok(Tls {
            server: Arc::new(server),
            grpc: client(GRPC_ALPN)?,
            pull: client(PULL_ALPN)?,
        })
    }

    /// Accepts the TLS side of connections from other nodes.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The TLS side of a pull's connection (blocking, as pulls are).
    pub fn pull_client(
        &self,
        tcp: std::net::TcpStream,
    ) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>> {
        let conn = rustls::ClientConnection::new(self.pull.clone(), node_name())
            .map_err(std::io::Error::other)?;
        Ok(rustls::StreamOwned::new(conn, tcp))
    }

    /// Connects to `address` for gRPC, over TLS.
    pub async fn connect_grpc(
        &self,
        address: &str,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(address).await?;
        tcp.set_nodelay(true)?;
        tokio_rustls::TlsConnector::from(self.grpc.clone())
            .connect(node_name(), tcp)
            .await
    }
}

fn node_name() -> ServerName<'static> {
    ServerName::try_from(NODE_NAME).expect("a valid DNS name")
}

/// Connects gRPC's channels to other nodes over TLS (tonic's connector:
/// a service from the node's URI to a connection).
#[derive(Clone)]
pub(super) struct GrpcConnector(pub Arc<Tls>);

impl tower_service::Service<tonic::transport::Uri> for GrpcConnector {
    type Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = std::io::Error;
    type Future = super::BoxFuture<'static, std::io::Result<Self::Response>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: tonic::transport::Uri) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let address = uri.authority().map(|a| a.to_string()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no node address")
            })?;
            Ok(hyper_util::rt::TokioIo::new(
                tls.connect_grpc(&address).await?,
            ))
        })
    }
}
