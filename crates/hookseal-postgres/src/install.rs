//! Installing the portable flavour as plain SQL (`hookseal install`), for
//! databases that load no library of ours (RDS, Aurora, Cloud SQL, AlloyDB,
//! Azure, Supabase, Neon).
//!
//! In pgmq's way: the scripts are the same SQL an extension would run,
//! applied by a small installer that records versions in
//! `hookseal.schema_versions` and applies upgrade scripts in order. One
//! transaction, under an advisory lock (two installers at once: one
//! installs, the other then finds it done), as the database owner a managed
//! provider gives you: `pgcrypto` is a trusted extension since PostgreSQL
//! 13, and nothing else needs a superuser. Running it again changes
//! nothing.
//!
//! The portable flavour is `sql/portable/` (the native flavour's Rust
//! functions in PL/pgSQL on `pgcrypto`: signing, verification, sealed
//! secrets) followed by `sql/hookseal.sql`, the schema both flavours share,
//! and `sql/portable/grants.sql` (the helpers its SQL functions call).

use tokio_postgres::Client;

use crate::EXTENSION_VERSION;

/// The portable flavour's version: the native extension's (one schema, two
/// flavours).
pub const PORTABLE_VERSION: &str = EXTENSION_VERSION;

/// The schema everything is installed in.
pub const SCHEMA: &str = "hookseal";

/// The portable flavour's install script at [`PORTABLE_VERSION`]: the core's
/// data (generated from the Rust presets), signing, verification, sealed
/// secrets, then the schema both flavours share, then the portable grants.
const SCRIPT: [&str; 6] = [
    include_str!("../../../sql/portable/core.sql"),
    include_str!("../../../sql/portable/signing.sql"),
    include_str!("../../../sql/portable/verify.sql"),
    include_str!("../../../sql/portable/secrets.sql"),
    include_str!("../../../sql/hookseal.sql"),
    include_str!("../../../sql/portable/grants.sql"),
];

/// One upgrade script of the portable flavour.
struct Upgrade {
    from: &'static str,
    to: &'static str,
    sql: &'static str,
}

/// Upgrade scripts, `sql/portable/hookseal--FROM--TO.sql`, in no particular
/// order (the path is followed from the installed version). None yet: the
/// first portable version is this one.
const UPGRADES: &[Upgrade] = &[];

/// The table the installer records versions in (the native flavour has
/// `pg_extension` instead).
const VERSIONS_TABLE: &str = "CREATE TABLE hookseal.schema_versions (
    version    text PRIMARY KEY,
    flavour    text NOT NULL CHECK (flavour = 'portable'),
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE hookseal.schema_versions IS
    'hookseal portable flavour: versions applied by hookseal install (newest last)';
";

/// Where a script's objects go, and bodies checked when called rather than
/// when created (the scripts' functions refer to each other), as `CREATE
/// EXTENSION` arranges for an extension script.
fn preamble() -> String {
    format!(
        "SET LOCAL search_path = {SCHEMA}, pg_catalog;\nSET LOCAL check_function_bodies = off;\n"
    )
}

/// The advisory lock every installer takes first (`hashtext` of its name).
/// (A DO block, so that a printed script writes no result row.)
const LOCK: &str = "DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('hookseal install')); END $lock$";

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// Nothing of hookseal was there; this version is installed.
    Fresh {
        /// [`PORTABLE_VERSION`].
        version: String,
    },
    /// An older portable version was there; the upgrade scripts ran.
    Upgraded {
        /// The version found.
        from: String,
        /// [`PORTABLE_VERSION`].
        to: String,
    },
    /// This version was there already: nothing changed.
    Current {
        /// [`PORTABLE_VERSION`].
        version: String,
    },
}

impl std::fmt::Display for Installed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Installed::Fresh { version } => write!(
                f,
                "installed hookseal {version} (portable flavour) in schema {SCHEMA}"
            ),
            Installed::Upgraded { from, to } => write!(
                f,
                "upgraded hookseal (portable flavour) from {from} to {to}"
            ),
            Installed::Current { version } => write!(
                f,
                "hookseal {version} (portable flavour) is installed already; nothing changed"
            ),
        }
    }
}

/// Why nothing was installed (the transaction rolled back).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The native extension is installed in this database.
    #[error(
        "the native hookseal extension {version} is installed in this database; \
         update it with ALTER EXTENSION hookseal UPDATE, not hookseal install"
    )]
    NativeExtension {
        /// `pg_extension.extversion`.
        version: String,
    },
    /// A schema named hookseal exists and the installer did not make it.
    #[error(
        "schema {SCHEMA} exists but holds no hookseal.schema_versions: it was not made by \
         hookseal install; drop it or install into another database"
    )]
    ForeignSchema,
    /// The database has a newer portable version than this build.
    #[error("the database has hookseal {installed} (portable), newer than this hookseal ({PORTABLE_VERSION}); use a newer hookseal")]
    Newer {
        /// The version found.
        installed: String,
    },
    /// No chain of upgrade scripts leads from the version found to this one.
    #[error("no upgrade path from hookseal {installed} (portable) to {PORTABLE_VERSION}")]
    NoPath {
        /// The version found.
        installed: String,
    },
    /// `pgcrypto` could not be created.
    #[error(
        "the portable flavour needs pgcrypto, and CREATE EXTENSION pgcrypto failed: {0}; \
         run it as the database owner (pgcrypto is trusted since PostgreSQL 13)"
    )]
    Pgcrypto(String),
    /// `--pg-tle` in a database without the pg_tle extension.
    #[error(
        "pg_tle is not installed in this database: CREATE EXTENSION pg_tle first (on RDS and \
         Aurora, as rds_superuser, with pg_tle in shared_preload_libraries), or install without \
         --pg-tle"
    )]
    NoPgTle,
    /// The database refused a statement.
    #[error("{}", crate::Described(.0))]
    Db(#[from] tokio_postgres::Error),
}

/// The SQL of a fresh install of [`PORTABLE_VERSION`], without the
/// transaction around it: the schema, the versions table, the scripts
/// (created in the first schema of the search path, set here) and the
/// version's row. Expects pgcrypto in the database.
pub fn install_sql() -> String {
    let mut sql = format!("CREATE SCHEMA {SCHEMA};\n{}{VERSIONS_TABLE}", preamble());
    for part in SCRIPT {
        sql.push_str(part);
        sql.push('\n');
    }
    // Every hookseal role may read which version it talks to (the start
    // checks of dispatchers, the Lambda and the CLI).
    sql.push_str(&format!(
        "GRANT SELECT ON {SCHEMA}.schema_versions TO hookseal_writer, hookseal_dispatcher, hookseal_admin;\n"
    ));
    sql.push_str(&record(PORTABLE_VERSION));
    sql
}

/// What `hookseal install --print-sql` writes: [`install_sql`] in one
/// transaction under the installer's lock, with pgcrypto created first, for
/// people who migrate with their own tool. The database it leaves is the
/// one [`install`] leaves.
pub fn print_sql() -> String {
    format!(
        "-- hookseal {PORTABLE_VERSION}, portable flavour (hookseal install --print-sql)\n\
         BEGIN;\n{LOCK};\nCREATE EXTENSION IF NOT EXISTS pgcrypto;\n{}COMMIT;\n",
        install_sql()
    )
}

/// The extension script pg_tle registers for [`PORTABLE_VERSION`]: the
/// same scripts, without what `CREATE EXTENSION` does itself (the schema,
/// the search path; versions live in `pg_extension`, so no versions table).
pub fn pg_tle_script() -> String {
    SCRIPT.join("\n")
}

/// What [`install_pg_tle`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// [`PORTABLE_VERSION`] (and the update paths to it) newly registered.
    Registered {
        /// [`PORTABLE_VERSION`].
        version: String,
        /// Update paths registered beside it, as `from--to`.
        paths: Vec<String>,
    },
    /// It was registered already: nothing changed.
    Current {
        /// [`PORTABLE_VERSION`].
        version: String,
    },
}

impl std::fmt::Display for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Registered::Registered { version, paths } => write!(
                f,
                "registered hookseal {version} with pg_tle{}; now run CREATE EXTENSION hookseal \
                 (or ALTER EXTENSION hookseal UPDATE)",
                if paths.is_empty() {
                    String::new()
                } else {
                    format!(" (update paths {})", paths.join(", "))
                }
            ),
            Registered::Current { version } => write!(
                f,
                "hookseal {version} is registered with pg_tle already; nothing changed"
            ),
        }
    }
}

/// Registers the portable flavour with pg_tle (RDS, Aurora, Supabase), as a
/// role holding `pgtle_admin`: [`PORTABLE_VERSION`]'s script with
/// `pgtle.install_extension` (schema hookseal, requiring pgcrypto), every
/// upgrade script with `pgtle.install_update_path`, and the default
/// version. `CREATE EXTENSION hookseal` and `ALTER EXTENSION hookseal
/// UPDATE` are then the database's own. One transaction; again: no change.
pub async fn install_pg_tle(client: &mut Client) -> Result<Registered, InstallError> {
    let tx = client.transaction().await?;
    tx.batch_execute(LOCK).await?;
    let has_tle: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_tle')",
            &[],
        )
        .await?
        .get(0);
    if !has_tle {
        return Err(InstallError::NoPgTle);
    }
    let known: Vec<String> = tx
        .query(
            "SELECT version FROM pgtle.available_extension_versions() WHERE name = 'hookseal'",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if known.iter().any(|v| v == PORTABLE_VERSION) {
        return Ok(Registered::Current {
            version: PORTABLE_VERSION.to_owned(),
        });
    }
    if known.is_empty() {
        tx.execute(
            "SELECT pgtle.install_extension('hookseal', $1, $2, $3, ARRAY['pgcrypto'], $4)",
            &[
                &PORTABLE_VERSION,
                &"hookseal, portable flavour: signed webhooks, sealed secrets and an outbox in SQL on pgcrypto",
                &pg_tle_script(),
                &SCHEMA,
            ],
        )
        .await?;
    } else {
        // A new version of an extension pg_tle knows: its script, then the
        // paths from the versions before it.
        tx.execute(
            "SELECT pgtle.install_extension_version_sql('hookseal', $1, $2)",
            &[&PORTABLE_VERSION, &pg_tle_script()],
        )
        .await?;
    }
    let mut paths = Vec::new();
    for u in UPGRADES.iter().filter(|_| !known.is_empty()) {
        tx.execute(
            "SELECT pgtle.install_update_path('hookseal', $1, $2, $3)",
            &[&u.from, &u.to, &u.sql],
        )
        .await?;
        paths.push(format!("{}--{}", u.from, u.to));
    }
    if !known.is_empty() {
        tx.execute(
            "SELECT pgtle.set_default_version('hookseal', $1)",
            &[&PORTABLE_VERSION],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Registered::Registered {
        version: PORTABLE_VERSION.to_owned(),
        paths,
    })
}

fn record(version: &str) -> String {
    format!("INSERT INTO {SCHEMA}.schema_versions (version, flavour) VALUES ('{version}', 'portable');\n")
}

/// Installs or upgrades the portable flavour in the database `client` is
/// connected to, in one transaction (see the module's documentation).
pub async fn install(client: &mut Client) -> Result<Installed, InstallError> {
    let tx = client.transaction().await?;
    tx.batch_execute(LOCK).await?;
    let found = installed(&tx).await?;
    if let Some(version) = found.native {
        return Err(InstallError::NativeExtension { version });
    }
    tx.batch_execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        .await
        .map_err(|e| InstallError::Pgcrypto(crate::Described(&e).to_string()))?;
    let done = match found.portable {
        None if found.schema => return Err(InstallError::ForeignSchema),
        None => {
            tx.batch_execute(&install_sql()).await?;
            Installed::Fresh {
                version: PORTABLE_VERSION.to_owned(),
            }
        }
        Some(v) if v == PORTABLE_VERSION => Installed::Current { version: v },
        Some(v) if newer(&v, PORTABLE_VERSION) => return Err(InstallError::Newer { installed: v }),
        Some(v) => {
            for step in upgrade_path(&v)? {
                tx.batch_execute(&format!("{}{}\n{}", preamble(), step.sql, record(step.to)))
                    .await?;
            }
            Installed::Upgraded {
                from: v,
                to: PORTABLE_VERSION.to_owned(),
            }
        }
    };
    tx.commit().await?;
    Ok(done)
}

/// What a database holds of hookseal.
struct Found {
    /// The native extension's version.
    native: Option<String>,
    /// Whether a schema named hookseal exists.
    schema: bool,
    /// The newest portable version recorded.
    portable: Option<String>,
}

async fn installed(tx: &tokio_postgres::Transaction<'_>) -> Result<Found, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'hookseal'),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'hookseal'),
                    pg_catalog.to_regclass('hookseal.schema_versions') IS NOT NULL",
            &[],
        )
        .await?;
    let (native, schema, table): (Option<String>, bool, bool) =
        (row.get(0), row.get(1), row.get(2));
    let portable = match table {
        false => None,
        true => tx
            .query_opt(
                "SELECT version FROM hookseal.schema_versions ORDER BY applied_at DESC, version DESC LIMIT 1",
                &[],
            )
            .await?
            .map(|r| r.get(0)),
    };
    Ok(Found {
        native,
        schema,
        portable,
    })
}

/// The upgrade scripts from `installed` to [`PORTABLE_VERSION`], in order.
fn upgrade_path(installed: &str) -> Result<Vec<&'static Upgrade>, InstallError> {
    let mut path = Vec::new();
    let mut at = installed;
    while at != PORTABLE_VERSION {
        let Some(step) = UPGRADES.iter().find(|u| u.from == at) else {
            return Err(InstallError::NoPath {
                installed: installed.to_owned(),
            });
        };
        path.push(step);
        at = step.to;
    }
    Ok(path)
}

/// Whether version `a` is newer than `b` (dotted numbers; a part that is not
/// a number counts as 0).
fn newer(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a) > parts(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(newer("0.10.0", "0.3.0"));
        assert!(newer("1.0.0", "0.99.99"));
        assert!(!newer("0.3.0", "0.3.0"));
        assert!(!newer("0.2.9", "0.3.0"));
    }

    #[test]
    fn the_printed_script_is_the_installed_one_in_a_transaction() {
        let printed = print_sql();
        assert!(printed.contains(&install_sql()));
        assert!(printed.trim_end().ends_with("COMMIT;"));
        assert!(printed.contains(LOCK));
    }

    #[test]
    fn no_path_from_an_unknown_version() {
        assert!(matches!(
            upgrade_path("0.0.1"),
            Err(InstallError::NoPath { .. })
        ));
        assert!(upgrade_path(PORTABLE_VERSION).unwrap().is_empty());
    }
}
