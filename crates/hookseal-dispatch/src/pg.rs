//! Connecting to PostgreSQL, with TLS when the URL asks for it.
//!
//! `sslmode=require` in the URL: TLS with the server certificate verified
//! (name and chain) against the Mozilla roots plus the PEM file named by
//! `PGSSLROOTCERT` (for a private CA such as Amazon RDS's bundle). Unlike
//! libpq's `require`, an unverifiable certificate is an error, not a silent
//! downgrade. `sslmode=disable` or `prefer` (the default): plaintext, for
//! loopback and private networks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_postgres::config::SslMode;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL does not parse.
    #[error("invalid database URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// The CA file could not be read or holds no certificate.
    #[error("PGSSLROOTCERT {path}: {reason}")]
    RootCert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server refused, or the network or TLS failed.
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// The CA file from `PGSSLROOTCERT`, if set.
pub fn root_cert_from_env() -> Option<PathBuf> {
    std::env::var_os("PGSSLROOTCERT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Connects; the connection is driven on a spawned task, which signals
/// `wake` on every `NOTIFY` and ends when the connection does
/// ([`Client::is_closed`] then turns true).
pub async fn connect(
    url: &str,
    root_cert: Option<&Path>,
    wake: Option<Arc<Notify>>,
) -> Result<Client, ConnectError> {
    let config: tokio_postgres::Config = url.parse().map_err(ConnectError::Url)?;
    if config.get_ssl_mode() == SslMode::Require {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(root_cert)?);
        let (client, connection) = config.connect(tls).await?;
        drive(connection, wake);
        Ok(client)
    } else {
        let (client, connection) = config.connect(NoTls).await?;
        drive(connection, wake);
        Ok(client)
    }
}

fn client_config(root_cert: Option<&Path>) -> Result<rustls::ClientConfig, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = root_cert {
        use rustls_pki_types::pem::PemObject;
        let bad = |reason: String| ConnectError::RootCert {
            path: path.to_owned(),
            reason,
        };
        let mut added = 0usize;
        for cert in
            rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?
        {
            let cert = cert.map_err(|e| bad(e.to_string()))?;
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no certificate in the file".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::RootCert {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn drive<S, T>(mut connection: Connection<S, T>, wake: Option<Arc<Notify>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(_)) => {
                    if let Some(w) = &wake {
                        w.notify_one();
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "database connection ended");
                    break;
                }
            }
        }
    });
}
