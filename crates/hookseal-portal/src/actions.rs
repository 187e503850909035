//! An endpoint's actions beyond *Enable*: redrive its dead letters, replay
//! its app's events to it, rotate its secret. Each is a POST with the
//! session's CSRF field that calls the extension's own function
//! (`redrive_endpoint`, `replay`, `rotate_secret`) and goes back to the
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

/// "N moved" after an action, from the redirect's query.
#[derive(Deserialize, Default)]
pub(crate) struct Said {
    redriven: Option<i32>,
    replayed: Option<i32>,
}

/// `since` as the SQL takes it: empty is NULL (the function's default).
const SINCE: &str = "nullif($2, '')::timestamp AT TIME ZONE 'UTC'";

pub(crate) fn said(s: &Said) -> Markup {
    html! {
        @if let Some(n) = s.redriven { p class="done" role="status" { (n) " dead letters queued again." } }
        @if let Some(n) = s.replayed { p class="done" role="status" { (n) " events queued to send again, under their ids." } }
    }
}

pub(crate) fn forms(op: &Operator, id: &str) -> Markup {
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
        p { "The endpoint's new secret. It is shown this once: copy it to the receiver now. \
             The old one stays valid for " (form.grace) "." }
        p { code class="secret" { (secret) } }
        p { a href={ "/endpoints/" (path_segment(&id)) } { "Back to the endpoint" } }
    };
    page("New secret", Some(&op), body).into_response()
}
