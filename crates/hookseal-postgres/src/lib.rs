//! Connecting to PostgreSQL, with TLS when the URL asks for it.
//!
//! `sslmode=require` in the URL: TLS with the server certificate verified
//! (name and chain) against the Mozilla roots plus the PEM file named by
//! `PGSSLROOTCERT` (for a private CA such as Amazon RDS's bundle). Unlike
//! libpq's `require`, an unverifiable certificate is an error, not a silent
//! downgrade. `sslmode=disable` or `prefer` (the default): plaintext, for
//! loopback and private networks.
//!
//! The one PostgreSQL client of the workspace: the dispatcher, the Lambda
//! adapter, the CLI's `status`/`attempts` and the axum crate's
//! `PgReplayStore` connect through it, so the CA file, the time limits and
//! the error classes are the same everywhere.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod install;

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
    #[error("{}", Described(.0))]
    Db(#[from] tokio_postgres::Error),
    /// No answer within the caller's limit (a stalled network).
    #[error("no answer from the database within {0:?}")]
    Timeout(std::time::Duration),
}

impl ConnectError {
    /// Worth trying again later: the network, the server's state or a
    /// timeout ([`is_transient`]), not a bad URL, CA file, password or
    /// database name.
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectError::Db(e) => is_transient(e),
            ConnectError::Timeout(_) => true,
            ConnectError::Url(_) | ConnectError::RootCert { .. } => false,
        }
    }

    /// No retry can succeed: a bad URL or CA file, or a refusal in one of
    /// [`is_permanent`]'s classes (a wrong password, a dropped database, a
    /// role without `USAGE` on the schema while the statements are
    /// prepared).
    pub fn is_permanent(&self) -> bool {
        match self {
            ConnectError::Db(e) => is_permanent(e),
            ConnectError::Timeout(_) => false,
            ConnectError::Url(_) | ConnectError::RootCert { .. } => true,
        }
    }
}

/// Where `url` points, for logs and messages: `host:port/dbname`, never a
/// user, password or option (a URL that does not parse is `(unparsable
/// database URL)`).
pub fn target(url: &str) -> String {
    let Ok(c) = url.parse::<tokio_postgres::Config>() else {
        return "(unparsable database URL)".to_owned();
    };
    let host = match c.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", c.get_dbname().unwrap_or(""))
}

/// The CA file from `PGSSLROOTCERT`, if set.
pub fn root_cert_from_env() -> Option<PathBuf> {
    std::env::var_os("PGSSLROOTCERT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// [`connect`] with the CA file of `PGSSLROOTCERT` ([`root_cert_from_env`]),
/// within `limit` (beyond it: [`ConnectError::Timeout`]): for a tool that
/// takes its TLS settings from the environment, as libpq's do.
pub async fn connect_from_env(
    url: &str,
    limit: std::time::Duration,
) -> Result<Client, ConnectError> {
    let root_cert = root_cert_from_env();
    tokio::time::timeout(limit, connect(url, root_cert.as_deref(), None))
        .await
        .map_err(|_| ConnectError::Timeout(limit))?
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

/// The longest wait for the database unless a caller sets its own (the
/// dispatcher's `--db-timeout`): a connection, or one call.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The extension version this build speaks to (`hookseal.claim()`'s and
/// `fail()`'s signatures, the outbox columns). Equal to the workspace
/// version, which is also the extension's `default_version`.
pub const EXTENSION_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A database error for logs: its SQLSTATE and message (and detail or hint)
/// when the server sent one, else the error and its causes. tokio-postgres'
/// own `Display` prints only `db error` for server errors.
pub struct Described<'a>(pub &'a tokio_postgres::Error);

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            write!(f, "SQLSTATE {}: {}", db.code().code(), db.message())?;
            if let Some(detail) = db.detail() {
                write!(f, " (detail: {detail})")?;
            }
            if let Some(hint) = db.hint() {
                write!(f, " (hint: {hint})")?;
            }
            return Ok(());
        }
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// Whether an error is about the connection (worth reconnecting and
/// trying again) rather than about the statement: no SQLSTATE, or one of
/// the classes 08 (connection), 57 (operator intervention: shutdown,
/// cancel, statement timeout), 53 (insufficient resources) or 40
/// (serialization failure, deadlock).
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => true,
        Some(db) => matches!(&db.code().code()[..2], "08" | "57" | "53" | "40"),
    }
}

/// Whether an error says the statement can never succeed as this role and
/// schema stand, so retrying it is pointless: SQLSTATE classes 28 (invalid
/// authorization), 3D (no such database), 3F (no such schema), 42 (syntax
/// error or access rule violation: 42501 insufficient privilege, 42883 no
/// such function) and 0A (feature not supported). Never true for an error
/// without a SQLSTATE (the network).
pub fn is_permanent(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        None => false,
        Some(db) => matches!(&db.code().code()[..2], "28" | "3D" | "3F" | "42" | "0A"),
    }
}

/// Which hookseal a database has: the same schema, signed in the database
/// (native: the extension's library) or by the dispatchers (portable: SQL
/// on pgcrypto, secrets sealed; installed by `hookseal install` or pg_tle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `CREATE EXTENSION hookseal` with the native library.
    Native,
    /// The portable flavour.
    Portable,
}

impl Flavour {
    /// `native` or `portable`, as `hookseal._flavour()` says.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Native => "native",
            Flavour::Portable => "portable",
        }
    }
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a database cannot be used by this build.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    /// Neither flavour is installed in this database.
    #[error("hookseal is not installed in this database; run CREATE EXTENSION hookseal (native, as a superuser) or hookseal install --database-url URL (portable, as the database owner)")]
    Missing,
    /// The installed version is not the one this build speaks to.
    #[error("hookseal ({flavour} flavour) is at version {installed}; this build needs {}; {}", EXTENSION_VERSION, upgrade_hint(*.flavour))]
    Version {
        /// `pg_extension.extversion`, or the newest
        /// `hookseal.schema_versions` row.
        installed: String,
        /// Which flavour was found (by how it was installed).
        flavour: Flavour,
    },
    /// The database is the portable flavour, which signs in its
    /// dispatchers, and this process was given no sealing key.
    #[error("the database is hookseal's portable flavour: its secrets are sealed and its dispatchers sign, so this process needs the sealing key hookseal keygen --sealing-key made (hookseal dispatch: --sealing-key-file or HOOKSEAL_SEALING_KEY_FILE; the Lambda: SEALING_KEY, SEALING_KEY_ID or SEALING_KEY_PARAMETER)")]
    NoSealingKey,
    /// The role may not call the functions a dispatcher needs.
    #[error("role {role} lacks {}; run GRANT hookseal_dispatcher TO {quoted} (as the database owner or a superuser)", missing.join(", "))]
    Privileges {
        /// `current_user`.
        role: String,
        /// `current_user` quoted as an identifier, for the GRANT.
        quoted: String,
        /// What it lacks: `USAGE on schema hookseal`, or
        /// `EXECUTE on hookseal.claim(…)` and the like.
        missing: Vec<String>,
    },
    /// No connection could be made (the database may come up later).
    #[error("cannot connect to check the extension: {0}")]
    Connect(#[from] ConnectError),
    /// The query failed.
    #[error("cannot read the extension's version: {}", Described(.0))]
    Db(#[from] tokio_postgres::Error),
}

impl ExtensionError {
    /// True for a database that is reachable but unusable (no extension, a
    /// version this build does not speak): a process should not start.
    pub fn is_fatal(&self) -> bool {
        match self {
            ExtensionError::Missing
            | ExtensionError::Version { .. }
            | ExtensionError::NoSealingKey
            | ExtensionError::Privileges { .. } => true,
            ExtensionError::Connect(e) => !e.is_transient(),
            ExtensionError::Db(e) => !is_transient(e),
        }
    }
}

/// Connects to `url` and checks its extension (see [`check_extension`]),
/// all within `limit` (beyond it: [`ConnectError::Timeout`], not fatal).
pub async fn check_url(
    url: &str,
    root_cert: Option<&Path>,
    limit: std::time::Duration,
) -> Result<Flavour, ExtensionError> {
    check_url_for(url, root_cert, limit, &[]).await
}

/// [`check_url`], then that the role may execute each of `functions`
/// (signatures inside the `hookseal` schema, such as
/// `release(text, bigint[])`; see [`check_privileges`]).
pub async fn check_url_for(
    url: &str,
    root_cert: Option<&Path>,
    limit: std::time::Duration,
    functions: &[&str],
) -> Result<Flavour, ExtensionError> {
    let check = async {
        let client = connect(url, root_cert, None).await?;
        let flavour = check_extension(&client).await?;
        check_privileges(&client, functions).await?;
        Ok(flavour)
    };
    tokio::time::timeout(limit, check)
        .await
        .unwrap_or(Err(ConnectError::Timeout(limit).into()))
}

/// Checks that `current_user` has `USAGE` on the `hookseal` schema and
/// `EXECUTE` on each of `functions` (signatures inside the schema); a
/// function that does not exist counts as one it may not execute. Nothing
/// to check when `functions` is empty.
pub async fn check_privileges(client: &Client, functions: &[&str]) -> Result<(), ExtensionError> {
    if functions.is_empty() {
        return Ok(());
    }
    let row = client
        .query_one(
            "SELECT current_user::text, pg_catalog.quote_ident(current_user), \
             pg_catalog.has_schema_privilege('hookseal', 'USAGE')",
            &[],
        )
        .await?;
    let (role, quoted, usage): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
    let missing = if usage {
        missing_functions(client, functions).await?
    } else {
        vec!["USAGE on schema hookseal".to_owned()]
    };
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ExtensionError::Privileges {
            role,
            quoted,
            missing,
        })
    }
}

/// Which of `functions` (inside the `hookseal` schema) `current_user` may
/// not execute, as `EXECUTE on hookseal.name(args)`.
async fn missing_functions(
    client: &Client,
    functions: &[&str],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let wanted: Vec<String> = functions.iter().map(|f| format!("hookseal.{f}")).collect();
    let rows = client
        .query(
            "SELECT f FROM unnest($1::text[]) WITH ORDINALITY AS w(f, n) \
             WHERE NOT coalesce(pg_catalog.has_function_privilege( \
                 pg_catalog.to_regprocedure(f), 'EXECUTE'), false) \
             ORDER BY n",
            &[&wanted],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| format!("EXECUTE on {}", r.get::<_, String>(0)))
        .collect())
}

fn upgrade_hint(flavour: Flavour) -> &'static str {
    match flavour {
        Flavour::Native => "run ALTER EXTENSION hookseal UPDATE",
        Flavour::Portable => {
            "run hookseal install --database-url URL (or ALTER EXTENSION hookseal UPDATE where pg_tle installed it)"
        }
    }
}

/// Checks that the database has hookseal at [`EXTENSION_VERSION`], in
/// either flavour, and says which. The version comes from `pg_extension`
/// (the native extension, or the portable one registered with pg_tle) or
/// from `hookseal.schema_versions` (`hookseal install`); the flavour from
/// the catalog: the native flavour's functions are the library's (C), the
/// portable flavour has none. Read from the catalogs only, so a role
/// without `USAGE` on the schema gets no error here (the privilege check
/// names what it lacks); such a role cannot read `schema_versions`, and the
/// version check is then left to that privilege check's refusal.
pub async fn check_extension(client: &Client) -> Result<Flavour, ExtensionError> {
    let row = client
        .query_one(
            "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'hookseal'), \
                    (SELECT pg_catalog.has_table_privilege(c.oid, 'SELECT') \
                            AND pg_catalog.has_schema_privilege(n.oid, 'USAGE') \
                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = 'hookseal' AND c.relname = 'schema_versions'), \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_proc p \
                            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
                            JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
                            WHERE n.nspname = 'hookseal' AND l.lanname = 'c')",
            &[],
        )
        .await?;
    let (extension, versions, library): (Option<String>, Option<bool>, bool) =
        (row.get(0), row.get(1), row.get(2));
    let flavour = if library {
        Flavour::Native
    } else {
        Flavour::Portable
    };
    let installed = match (extension, versions) {
        (Some(v), _) => v,
        (None, Some(true)) => client
            .query_opt(
                "SELECT version FROM hookseal.schema_versions \
                 ORDER BY applied_at DESC, version DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|r| r.get(0))
            .ok_or(ExtensionError::Missing)?,
        // Installed, and this role may not read which version.
        (None, Some(false)) => return Ok(flavour),
        (None, None) => return Err(ExtensionError::Missing),
    };
    if installed == EXTENSION_VERSION {
        Ok(flavour)
    } else {
        Err(ExtensionError::Version { installed, flavour })
    }
}
