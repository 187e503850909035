//! An endpoint's actions beyond *Enable*: redrive its dead letters, replay
//! its app's events to it, rotate its secret, alter its URL and flow
//! control. Each is a POST with the session's CSRF field that calls the
//! extension's own function (`redrive_endpoint`, `replay`, `rotate_secret`,
//! `alter_endpoint`, which checks every option) and goes back to the
//! endpoint's page saying how many rows moved; a rotation instead answers
//! with the one page that shows the new secret (never a URL, a redirect or
//! a log line; `no-store` like every page).

use axum::extract::{Form, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Operator;
use crate::pages::{csrf_refusal, failure, page, path_segment, CsrfForm};
use crate::State;

/// What an action's form posts: the CSRF field, and a time (UTC, as a
/// `datetime-local` input writes it) or a PostgreSQL interval.
#[derive(Deserialize)]
pub(crate) struct ActionForm {
    #[serde(flatten)]
    csrf: CsrfForm,
    #[serde(default)]
    since: String,
    #[serde(default)]
    grace: String,
}

/// The alter form: each field as text, as the current value fills it in.
#[derive(Deserialize)]
pub(crate) struct Options {
    #[serde(default)]
    url: String,
    #[serde(default)]
    max_in_flight: String,
    #[serde(default)]
    rate_limit: String,
    #[serde(default)]
    failure_threshold: String,
    #[serde(default)]
    probe_interval: String,
    #[serde(default)]
    disable_after: String,
}

#[derive(Deserialize)]
pub(crate) struct AlterForm {
    #[serde(flatten)]
    csrf: CsrfForm,
    #[serde(flatten)]
    options: Options,
}

/// Empty max_in_flight / rate_limit: no limit (null); the other empty
/// fields are left as they are. alter_endpoint() names a bad value.
const ALTER_SQL: &str = "SELECT hookseal.alter_endpoint($1::text,
        jsonb_build_object('url', $2::text, 'max_in_flight', nullif($3::text, '')::integer,
                           'rate_limit', nullif($4::text, '')::double precision)
        || jsonb_strip_nulls(jsonb_build_object('failure_threshold', nullif($5::text, '')::integer,
                                                'probe_interval', nullif($6::text, ''),
                                                'disable_after', nullif($7::text, ''))))";

impl Options {
    /// From the endpoint's URL (column 2) and its five option columns from
    /// `at` on, as the console's endpoint query writes them.
    pub(crate) fn from_row(r: &tokio_postgres::Row, at: usize) -> Options {
        Options {
            url: r.get(2),
            max_in_flight: r.get(at),
            rate_limit: r.get(at + 1),
            failure_threshold: r.get(at + 2),
            probe_interval: r.get(at + 3),
            disable_after: r.get(at + 4),
        }
    }
}

fn alter_form(op: &Operator, to: String, o: &Options) -> Markup {
    let fields = [
        ("url", "URL", &o.url),
        (
            "max_in_flight",
            "Max in flight (empty: no limit)",
            &o.max_in_flight,
        ),
        (
            "rate_limit",
            "Deliveries per second (empty: no limit)",
            &o.rate_limit,
        ),
        (
            "failure_threshold",
            "Failures that open the circuit",
            &o.failure_threshold,
        ),
        ("probe_interval", "Probe interval", &o.probe_interval),
        (
            "disable_after",
            "Disable after failing for",
            &o.disable_after,
        ),
    ];
    html! {
        form method="post" action=(to) class="alter" {
            input type="hidden" name="csrf" value=(op.csrf);
            @for (name, label, value) in fields {
                label { (label) " " input name=(name) value=(value); }
            }
            button type="submit" { "Save" }
        }
    }
}

pub(crate) async fn alter(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<AlterForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&state, &op, &form.csrf) {
        return refused;
    }
    let o = &form.options;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &id,
        &o.url,
        &o.max_in_flight,
        &o.rate_limit,
        &o.failure_threshold,
        &o.probe_interval,
        &o.disable_after,
    ];
    match state.db.query(ALTER_SQL, &params).await {
        Ok(_) => {
            Redirect::to(&format!("/endpoints/{}?altered=1", path_segment(&id))).into_response()
        }
        Err(e) => failure(StatusCode::UNPROCESSABLE_ENTITY, Some(&op), &e.to_string()),
    }
}

/// "N moved" after an action, from the redirect's query.
#[derive(Deserialize, Default)]
pub(crate) struct Said {
    redriven: Option<i32>,
    replayed: Option<i32>,
    altered: Option<i32>,
}

/// `since` as the SQL takes it: empty is NULL (the function's default).
const SINCE: &str = "nullif($2, '')::timestamp AT TIME ZONE 'UTC'";

pub(crate) fn said(s: &Said) -> Markup {
    html! {
        @if let Some(n) = s.redriven { p class="done" role="status" { (n) " dead letters queued again." } }
        @if let Some(n) = s.replayed { p class="done" role="status" { (n) " events queued to send again, under their ids." } }
        @if s.altered.is_some() { p class="done" role="status" { "Saved." } }
    }
}

pub(crate) fn forms(op: &Operator, id: &str, options: &Options) -> Markup {
    let to = |what: &str| format!("/endpoints/{}/{what}", path_segment(id));
    html! {
        h2 { "Actions" }
        div class="actions" {
            form method="post" action=(to("redrive")) {
                input type="hidden" name="csrf" value=(op.csrf);
                label { "Dead letters since (UTC, empty: all) " input type="datetime-local" name="since"; }
                button type="submit" { "Redrive" }
            }
            form method="post" action=(to("replay")) {
                input type="hidden" name="csrf" value=(op.csrf);
                label { "Events since (UTC) " input type="datetime-local" name="since" required; }
                button type="submit" { "Replay to this endpoint" }
            }
            form method="post" action=(to("rotate")) {
                input type="hidden" name="csrf" value=(op.csrf);
                label { "Old secret valid for " input name="grace" value="24 hours" size="10"; }
                button type="submit" { "Rotate the secret" }
            }
        }
        h2 { "URL and flow control" }
        (alter_form(op, to("alter"), options))
    }
}

/// Runs `sql` ($1 the endpoint, $2 the form's `since`) that answers a
/// count, then back to the endpoint's page with `said=count`.
async fn counted(
    state: &State,
    op: &Operator,
    id: &str,
    form: &ActionForm,
    sql: &str,
    said: &str,
) -> Response {
    if let Some(refused) = csrf_refusal(state, op, &form.csrf) {
        return refused;
    }
    match state.db.query(sql, &[&id, &form.since]).await {
        Ok(rows) => {
            let n: i32 = rows.first().map(|r| r.get(0)).unwrap_or(0);
            Redirect::to(&format!("/endpoints/{}?{said}={n}", path_segment(id))).into_response()
        }
        Err(e) => failure(StatusCode::UNPROCESSABLE_ENTITY, Some(op), &e.to_string()),
    }
}

pub(crate) async fn redrive(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let sql = format!("SELECT hookseal.redrive_endpoint($1, coalesce({SINCE}, '-infinity'))");
    counted(&state, &op, &id, &form, &sql, "redriven").await
}

pub(crate) async fn replay(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let sql = format!(
        "SELECT hookseal.replay(e.app_id, {SINCE}, 'infinity', e.id) FROM hookseal.endpoints e WHERE e.id = $1"
    );
    counted(&state, &op, &id, &form, &sql, "replayed").await
}

pub(crate) async fn rotate(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&state, &op, &form.csrf) {
        return refused;
    }
    let sql = "SELECT secret FROM hookseal.rotate_secret($1, $2::text::interval)";
    let secret: String = match state.db.query(sql, &[&id, &form.grace]).await {
        Ok(rows) => match rows.first() {
            Some(r) => r.get(0),
            None => return failure(StatusCode::NOT_FOUND, Some(&op), "no such endpoint"),
        },
        Err(e) => return failure(StatusCode::UNPROCESSABLE_ENTITY, Some(&op), &e.to_string()),
    };
    let body = html! {
        p { "The endpoint's new secret. It is shown this once: copy it to the receiver now. "
             "The old one stays valid for " (form.grace) "." }
        p { code class="secret" { (secret) } }
        p { a href={ "/endpoints/" (path_segment(&id)) } { "Back to the endpoint" } }
    };
    page("New secret", Some(&op), body).into_response()
}
