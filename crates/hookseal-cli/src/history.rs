//! `hookseal status` and `hookseal attempts`: the extension's delivery
//! history (`endpoint_health()`, `event_attempts()`), read through a role
//! granted `hookseal_admin`, printed as a table or as JSON lines.

use clap::Args;
use serde_json::{Map, Value};

use crate::{failed, usage, with_database, Fail};

/// Where to read from.
#[derive(Args, Debug)]
pub struct DbArgs {
    /// `postgres://` URL of a role granted hookseal_admin (never printed).
    /// `hookseal status` takes it repeated (or --database-urls-file), for a
    /// worker over several databases: one table, a `database` column.
    #[arg(
        long = "database-url",
        value_name = "URL",
        env = "DATABASE_URL",
        hide_env_values = true,
        required_unless_present = "database_urls_file"
    )]
    database_url: Vec<String>,
    /// A file of database URLs, one per line (as `hookseal dispatch` takes).
    #[arg(long, value_name = "FILE")]
    database_urls_file: Option<std::path::PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

/// `hookseal status` arguments.
#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The window the figures cover, as a PostgreSQL interval (default:
    /// endpoint_health()'s own, one hour).
    #[arg(long)]
    since: Option<String>,
}

/// `hookseal attempts` arguments.
#[derive(Args, Debug)]
pub struct AttemptsArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The event (message) id.
    event_id: String,
    /// The app the event belongs to: needed when two apps wrote the same
    /// event id (event_attempts() refuses to guess and names them).
    #[arg(long)]
    app: Option<String>,
}

const STATUS_COLUMNS: &[&str] = &[
    "endpoint_id",
    "url",
    "enabled",
    "circuit",
    "attempts",
    "success_rate",
    "p50_ms",
    "p99_ms",
    "queued",
    "dead",
    "last_error",
];

const ATTEMPT_COLUMNS: &[&str] = &[
    "endpoint_id",
    "status",
    "attempt",
    "started_at",
    "duration_ms",
    "http_status",
    "error_class",
    "error",
    "resigned",
    "next_attempt_at",
];

/// Prints every endpoint's health over the window, of every database
/// given (with a `database` column when there are several). A database
/// that cannot be read is named on stderr (exit 1) and the others are
/// printed all the same.
pub fn status(args: StatusArgs) -> Result<u8, Fail> {
    let urls = crate::dispatch::database_urls(
        &args.db.database_url,
        args.db.database_urls_file.as_deref(),
    )?;
    let (sql, params): (&str, Vec<&String>) = match &args.since {
        Some(since) => (
            "SELECT row_to_json(h)::text FROM hookseal.endpoint_health($1::text::interval) h",
            vec![since],
        ),
        None => (
            "SELECT row_to_json(h)::text FROM hookseal.endpoint_health() h",
            vec![],
        ),
    };
    if let [only] = urls.as_slice() {
        let rows = query(only, sql, &params)?;
        print_rows(&rows, STATUS_COLUMNS, args.db.json)?;
        return Ok(0);
    }
    let mut all = Vec::new();
    let mut code = 0;
    for url in &urls {
        let target = hookseal_postgres::target(url);
        match query(url, sql, &params) {
            Ok(rows) => all.extend(rows.into_iter().map(|mut r| {
                r.insert("database".into(), Value::String(target.clone()));
                r
            })),
            Err(Fail(msg, c)) => {
                eprintln!("hookseal: {target}: {msg}");
                code = code.max(c.min(1));
            }
        }
    }
    let columns: Vec<&str> = std::iter::once("database")
        .chain(STATUS_COLUMNS.iter().copied())
        .collect();
    print_rows(&all, &columns, args.db.json)?;
    Ok(code)
}

/// Prints one event's delivery history; exit 1 when there is no such event.
pub fn attempts(args: AttemptsArgs) -> Result<u8, Fail> {
    let [url] = args.db.database_url.as_slice() else {
        return Err(usage(
            "hookseal attempts reads one database: give one --database-url",
        ));
    };
    let rows = match &args.app {
        Some(app) => query(
            url,
            "SELECT row_to_json(h)::text FROM hookseal.event_attempts($1, $2) h",
            &[&args.event_id, app],
        )?,
        None => query(
            url,
            "SELECT row_to_json(h)::text FROM hookseal.event_attempts($1) h",
            &[&args.event_id],
        )?,
    };
    if rows.is_empty() {
        let of_app = args
            .app
            .as_ref()
            .map(|a| format!(" in app {a}"))
            .unwrap_or_default();
        return Err(failed(format!(
            "no event {}{of_app} (never written, or removed by retention)",
            args.event_id
        )));
    }
    if let (false, Some(only)) = (args.db.json, matched_no_endpoint(&rows)) {
        let kind = cell(only.get("type"));
        return print_line(&format!(
            "event {} ({kind}) matched no endpoint: no enabled endpoint of its app took this type when it was written, so nothing was or will be sent",
            args.event_id
        ))
        .map(|()| 0);
    }
    print_rows(&rows, ATTEMPT_COLUMNS, args.db.json)?;
    Ok(0)
}

/// `event_attempts()` answers an event that matched no endpoint with one
/// line whose `endpoint_id` is NULL (the event, no outbox row): that line.
fn matched_no_endpoint(rows: &[Map<String, Value>]) -> Option<&Map<String, Value>> {
    match rows {
        [only] if matches!(only.get("endpoint_id"), None | Some(Value::Null)) => Some(only),
        _ => None,
    }
}

fn print_line(s: &str) -> Result<(), Fail> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{s}").map_err(|e| failed(format!("stdout: {e}")))
}

/// Runs one query with text parameters; each row is one JSON object.
fn query(url: &str, sql: &str, params: &[&String]) -> Result<Vec<Map<String, Value>>, Fail> {
    // The CA file of PGSSLROOTCERT (0.3.0 and before passed none: a
    // private CA such as RDS's failed here while `dispatch` worked).
    with_database(url, |client| async move {
        // Which flavour, at which version: said on stderr, so the table and
        // the JSON lines stay what they are.
        let flavour = hookseal_postgres::check_extension(&client)
            .await
            .map_err(|e| failed(e.to_string()))?;
        eprintln!(
            "hookseal {} ({flavour} flavour)",
            hookseal_postgres::EXTENSION_VERSION
        );
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            params.iter().map(|p| *p as _).collect();
        let rows = client.query(sql, &params).await.map_err(db_error)?;
        rows.iter()
            .map(|r| {
                let text: String = r.get(0);
                serde_json::from_str(&text).map_err(|e| failed(format!("unexpected row: {e}")))
            })
            .collect()
    })
}

/// A database error with its SQLSTATE, and what to do about the usual ones.
fn db_error(e: tokio_postgres::Error) -> Fail {
    match e.as_db_error() {
        Some(db) => {
            let hint = match db.code().code() {
                "42501" => " (the role needs hookseal_admin)",
                "3F000" | "42883" => " (is the hookseal extension 0.3.0 installed?)",
                _ => "",
            };
            let msg = format!("{} [{}]{hint}", db.message(), db.code().code());
            if matches!(db.code().code(), "22007" | "22P02" | "22023") {
                usage(msg)
            } else {
                failed(msg)
            }
        }
        None => failed(format!("database: {e}")),
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.replace(['\n', '\r', '\t'], " "),
        Some(other) => other.to_string(),
    }
}

/// A table with the given columns (widths from the content; long cells cut
/// at 60 characters), or the whole rows as JSON lines.
fn print_rows(rows: &[Map<String, Value>], columns: &[&str], json: bool) -> Result<(), Fail> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let w = |out: &mut std::io::StdoutLock, s: String| {
        writeln!(out, "{s}").map_err(|e| failed(format!("stdout: {e}")))
    };
    if json {
        for r in rows {
            w(&mut out, Value::Object(r.clone()).to_string())?;
        }
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| cell(r.get(*c)).chars().take(60).collect())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<&str>| {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    w(&mut out, line(columns.to_vec()))?;
    for r in &cells {
        w(&mut out, line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
