//! The console's pages and actions. Every value shown comes through maud,
//! which escapes it: endpoint URLs, error texts, answer bodies and event
//! types are written by others. Every state-changing request is a POST
//! with the session's CSRF field.

use axum::extract::{Form, Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::actions::{self, Said};
use crate::auth::{self, Operator};
use crate::chart::{self, Hour};
use crate::{PortalError, State};

const STYLESHEET: &str = include_str!("../static/portal.css");
const SCRIPT: &str = include_str!("../static/portal.js");

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/", get(console))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/endpoints/{id}", get(endpoint))
        .route("/endpoints/{id}/enable", post(enable))
        .route("/endpoints/{id}/redrive", post(actions::redrive))
        .route("/endpoints/{id}/replay", post(actions::replay))
        .route("/endpoints/{id}/rotate", post(actions::rotate))
        .route("/endpoints/{id}/alter", post(actions::alter))
        .route("/events", get(event))
        .route("/static/portal.css", get(stylesheet))
        .route("/static/portal.js", get(script))
}

/// The one script: shows `<time>` values in the viewer's zone. Every page
/// and action works without it.
async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// A time the SQL wrote as `YYYY-MM-DD HH:MM:SS UTC`: that text, in a
/// `<time>` whose `datetime` the script turns into the viewer's zone.
pub(crate) fn when(utc: &str) -> Markup {
    let iso = utc
        .strip_suffix(" UTC")
        .map(|t| format!("{}Z", t.replacen(' ', "T", 1)));
    html! {
        @if let Some(iso) = iso { time datetime=(iso) title=(utc) { (utc) } } @else { (utc) }
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

pub(crate) fn page(title: &str, op: Option<&Operator>, body: Markup) -> Html<String> {
    let signed_in = html! {
        a href="/" class="brand" { "hookseal" }
        @if let Some(op) = op {
            form method="post" action="/logout" class="inline" {
                input type="hidden" name="csrf" value=(op.csrf);
                button type="submit" { "Sign out" }
            }
        }
    };
    layout(title, signed_in, body)
}

/// Every page's frame: the stylesheet, the one script, `top` in the header.
pub(crate) fn layout(title: &str, top: Markup, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · hookseal" }
                    link rel="stylesheet" href="/static/portal.css";
                    script src="/static/portal.js" defer {}
                }
                body {
                    header { (top) }
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
}

pub(crate) fn failure(status: StatusCode, op: Option<&Operator>, what: &str) -> Response {
    (
        status,
        page(
            "Something went wrong",
            op,
            html! { p class="error" { (what) } },
        ),
    )
        .into_response()
}

fn db_failure(op: &Operator, e: PortalError) -> Response {
    failure(StatusCode::SERVICE_UNAVAILABLE, Some(op), &e.to_string())
}

// ------------------------------------------------------------ sign-in

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login_page() -> Html<String> {
    login_form(None)
}

fn login_form(error: Option<&str>) -> Html<String> {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p class="error" role="alert" { (e) } }
            form method="post" action="/login" {
                label for="token" { "Operator token (" code { "hookseal portal-token --operator" } ")" }
                input id="token" name="token" type="password" autocomplete="off" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

async fn login(
    axum::extract::State(state): axum::extract::State<State>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    match auth::sign_in(&state, &form.token) {
        Ok(cookie) => (jar.add(cookie), Redirect::to("/")).into_response(),
        Err(e) => {
            tracing::info!(reason = %e, "sign-in refused");
            (
                StatusCode::UNAUTHORIZED,
                login_form(Some(auth::refusal(&e))),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// The form's CSRF field, checked: the 403 page to answer when it is
/// missing or not this session's.
pub(crate) fn csrf_refusal(state: &State, op: &Operator, form: &CsrfForm) -> Option<Response> {
    if op.csrf_ok(state, form.csrf.as_deref()) {
        return None;
    }
    Some(failure(
        StatusCode::FORBIDDEN,
        Some(op),
        "this form has expired: reload the page and try again",
    ))
}

async fn logout(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&state, &op, &form) {
        return refused;
    }
    (jar.add(auth::sign_out(&state)), Redirect::to("/login")).into_response()
}

// ------------------------------------------------------------ console

/// One endpoint's line: endpoint_health() over 24 hours beside its status.
struct Line {
    id: String,
    app: String,
    url: String,
    enabled: bool,
    disabled_reason: Option<String>,
    held_reason: Option<String>,
    circuit: String,
    attempts: i64,
    success_rate: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    queued: i64,
    dead: i64,
    last_error: Option<String>,
    /// The alter form's current values (endpoint_status, as text).
    pub(crate) options: actions::Options,
}

/// The window of every health figure: the last 24 hours from the hour
/// (24 to 25 hours), so endpoint_health() reads whole hours of its rollup
/// and nothing of the attempt log.
pub(crate) const WINDOW: &str =
    "now() - date_trunc('hour', now() AT TIME ZONE 'UTC' - interval '24 hours') AT TIME ZONE 'UTC'";

/// Endpoints per page of the console's list.
pub(crate) const PAGE: i64 = 50;

/// One page of endpoints ($2 rows from $3; only $1 when given, only app $4
/// when given), those that need the operator first, with their health;
/// the last column counts the endpoints of every page.
static LINES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH page AS (
            SELECT e.id FROM hookseal.endpoints e JOIN hookseal.endpoint_state s ON s.endpoint_id = e.id
             WHERE ($1::text IS NULL OR e.id = $1) AND ($4::text IS NULL OR e.app_id = $4)
             ORDER BY (NOT e.enabled OR s.circuit <> 'closed'
                       OR EXISTS (SELECT 1 FROM hookseal.outbox o
                                   WHERE o.endpoint_id = e.id AND o.status = 'dead')) DESC,
                      e.app_id, e.id
             LIMIT $2 OFFSET $3
        )
        SELECT h.endpoint_id, h.app_id, h.url, h.enabled, s.disabled_reason, s.held_reason,
               h.circuit, h.attempts, h.success_rate, h.p50_ms, h.p99_ms, h.queued, h.dead, h.last_error,
               coalesce(s.max_in_flight::text, ''), coalesce(s.rate_limit::text, ''),
               coalesce(s.failure_threshold::text, ''), coalesce(s.probe_interval::text, ''),
               coalesce(s.disable_after::text, ''),
               (SELECT count(*) FROM hookseal.endpoints e
                 WHERE ($1::text IS NULL OR e.id = $1) AND ($4::text IS NULL OR e.app_id = $4))
          FROM hookseal.endpoint_health({WINDOW}, ARRAY(SELECT id FROM page)) h
          JOIN hookseal.endpoint_status s
            ON s.endpoint_id = h.endpoint_id AND s.endpoint_id = ANY (ARRAY(SELECT id FROM page))
         ORDER BY (NOT h.enabled OR h.circuit <> 'closed' OR h.dead > 0) DESC, h.app_id, h.endpoint_id"
    )
});

/// Which endpoints a list shows.
#[derive(Default)]
struct Which<'a> {
    only: Option<&'a str>,
    app: Option<&'a str>,
    /// From 0.
    page: i64,
}

/// A page of lines, and how many endpoints match in all.
async fn lines(state: &State, which: &Which<'_>) -> Result<(Vec<Line>, i64), PortalError> {
    let offset = which.page.saturating_mul(PAGE);
    let rows = state
        .db
        .query(&LINES, &[&which.only, &PAGE, &offset, &which.app])
        .await?;
    let total = rows.first().map_or(0, |r| r.get(19));
    let lines = rows
        .iter()
        .map(|r| Line {
            id: r.get(0),
            app: r.get(1),
            url: r.get(2),
            enabled: r.get(3),
            disabled_reason: r.get(4),
            held_reason: r.get(5),
            circuit: r.get(6),
            attempts: r.get(7),
            success_rate: r.get(8),
            p50: r.get(9),
            p99: r.get(10),
            queued: r.get(11),
            dead: r.get(12),
            last_error: r.get(13),
            options: actions::Options::from_row(r, 14),
        })
        .collect();
    Ok((lines, total))
}

fn state_of(l: &Line) -> Markup {
    html! {
        @if !l.enabled {
            span class="bad" { "disabled" }
            @if let Some(why) = &l.disabled_reason { " · " (why) }
        } @else if l.circuit != "closed" {
            span class="bad" { "circuit " (l.circuit) }
        } @else {
            span class="ok" { "enabled" }
        }
        @if let Some(why) = &l.held_reason { br; span class="bad" { (why) } }
    }
}

pub(crate) fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} ms"))
        .unwrap_or_else(|| "–".into())
}

pub(crate) fn rate(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1} %", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

#[derive(Deserialize, Default)]
struct ListQuery {
    /// From 1.
    page: Option<i64>,
    app: Option<String>,
}

async fn console(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Query(q): Query<ListQuery>,
) -> Response {
    let at = q.page.unwrap_or(1).clamp(1, i64::MAX / PAGE) - 1;
    let app = q.app.as_deref().filter(|a| !a.is_empty());
    let which = Which {
        only: None,
        app,
        page: at,
    };
    let (lines, total) = match lines(&state, &which).await {
        Ok(l) => l,
        Err(e) => return db_failure(&op, e),
    };
    let body = html! {
        form method="get" action="/events" class="find" {
            label for="event" { "Why didn't an event arrive? Event id:" }
            input id="event" name="id" required;
            button type="submit" { "Show its attempts" }
        }
        @if let Some(a) = app { p { "App " code { (a) } " · " a href="/" { "all apps" } } }
        @if lines.is_empty() && at == 0 {
            p class="empty" { "No endpoints yet. Create one with "
                code { "SELECT hookseal.create_endpoint(app, url)" } "; it appears here." }
        } @else if lines.is_empty() {
            p class="empty" { "No endpoint on page " (at + 1) ": " a href="/" { "the first page" } "." }
        } @else {
            (pager(at, total, app))
            div class="scroll" { table {
                thead { tr { th { "Endpoint" } th { "App" } th { "URL" } th { "State" }
                    th { "Attempts (24 h)" } th { "Success" } th { "p50 / p99" }
                    th { "Queued" } th { "Dead" } th { "Last error" } } }
                tbody { @for l in &lines { tr {
                    td { a href={ "/endpoints/" (path_segment(&l.id)) } { (l.id) } }
                    td { a href={ "/?app=" (path_segment(&l.app)) } { (l.app) } }
                    td class="url" { (l.url) } td { (state_of(l)) }
                    td class="n" { (l.attempts) } td class="n" { (rate(l.success_rate)) }
                    td class="n" { (ms(l.p50)) " / " (ms(l.p99)) }
                    td class="n" { (l.queued) } td class="n" { (l.dead) }
                    td { (l.last_error.as_deref().unwrap_or("")) }
                } } }
            } }
        }
    };
    page("Endpoints", Some(&op), body).into_response()
}

/// "Endpoints 51–100 of 1000", with links to the pages around.
fn pager(page: i64, total: i64, app: Option<&str>) -> Markup {
    let first = page * PAGE + 1;
    let last = (first + PAGE - 1).min(total);
    let link = |n: i64| match app {
        Some(a) => format!("/?app={}&page={n}", path_segment(a)),
        None => format!("/?page={n}"),
    };
    html! {
        nav class="pager" aria-label="pages" {
            "Endpoints " (first.min(total)) "–" (last) " of " (total) ", those that need you first"
            @if page > 0 { " · " a href=(link(page)) rel="prev" { "previous" } }
            @if last < total { " · " a href=(link(page + 2)) rel="next" { "next" } }
        }
    }
}

// ------------------------------------------------------------ one endpoint

/// Attempts and failures per hour over 24 hours, from the rollup.
const HOURS_SQL: &str = "SELECT floor(extract(epoch FROM now() - r.hour) / 3600)::integer,
        sum(r.attempts)::bigint, sum(r.attempts - r.delivered)::bigint
   FROM hookseal.attempt_rollup r
  WHERE r.endpoint_id = $1 AND r.hour > now() - interval '24 hours'
  GROUP BY 1";

/// The endpoint's 20 newest attempts: the rollup names the hours that
/// hold them, so the log is read over those hours only (its BRIN index on
/// finished_at), however long ago they were.
const RECENT_SQL: &str = "WITH h AS (
        SELECT r.hour, sum(r.attempts) AS n FROM hookseal.attempt_rollup r
         WHERE r.endpoint_id = $1 GROUP BY r.hour
    ), c AS (
        SELECT h.hour, sum(h.n) OVER (ORDER BY h.hour DESC) - h.n AS newer FROM h
    ), span AS (
        SELECT min(c.hour) AS lo, max(c.hour) + interval '1 hour' AS hi FROM c WHERE c.newer < 20
    )
    SELECT to_char(a.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',
        o.event_id, a.attempt, a.http_status, a.error_class, coalesce(a.error, ''),
        round(extract(epoch FROM a.finished_at - a.started_at) * 1000)::bigint,
        coalesce(left(a.response_body, 200), '')
   FROM hookseal.attempts a LEFT JOIN hookseal.outbox o ON o.id = a.outbox_id
  WHERE a.endpoint_id = $1
    AND a.finished_at >= (SELECT lo FROM span) AND a.finished_at < (SELECT hi FROM span)
  ORDER BY a.started_at DESC LIMIT 20";

async fn endpoint(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
    Query(said): Query<Said>,
) -> Response {
    let which = Which {
        only: Some(&id),
        ..Which::default()
    };
    let found = lines(&state, &which).await;
    let line = match found.map(|(mut l, _)| l.pop()) {
        Ok(Some(l)) => l,
        Ok(None) => return failure(StatusCode::NOT_FOUND, Some(&op), "no such endpoint"),
        Err(e) => return db_failure(&op, e),
    };
    let (hours, recent) = match (
        state.db.query(HOURS_SQL, &[&id]).await,
        state.db.query(RECENT_SQL, &[&id]).await,
    ) {
        (Ok(h), Ok(r)) => (h, r),
        (Err(e), _) | (_, Err(e)) => return db_failure(&op, e),
    };
    let hours: Vec<Hour> = hours
        .iter()
        .map(|r| Hour {
            ago: u32::try_from(r.get::<_, i32>(0)).unwrap_or(u32::MAX),
            attempts: r.get(1),
            failures: r.get(2),
        })
        .collect();
    page(
        &line.id.clone(),
        Some(&op),
        html! {
            (actions::said(&said))
            (endpoint_body(&op, &line, &hours, &recent))
            (actions::forms(&op, &line.id, &line.options))
        },
    )
    .into_response()
}

fn endpoint_body(
    op: &Operator,
    l: &Line,
    hours: &[Hour],
    recent: &[tokio_postgres::Row],
) -> Markup {
    html! {
        dl {
            dt { "App" } dd { (l.app) }
            dt { "URL" } dd class="url" { (l.url) }
            dt { "State" } dd { (state_of(l)) }
            dt { "Queued / dead" } dd { (l.queued) " / " (l.dead) }
        }
        @if !l.enabled || l.circuit != "closed" {
            form method="post" action={ "/endpoints/" (path_segment(&l.id)) "/enable" } {
                input type="hidden" name="csrf" value=(op.csrf);
                button type="submit" { "Enable (and close its circuit)" }
            }
        }
        h2 { "Attempts per hour" }
        (chart::attempts(hours))
        h2 { "Recent attempts" }
        @if recent.is_empty() {
            p class="empty" { "No attempt yet: events of its app reach it once a dispatcher runs." }
        } @else {
            div class="scroll" { table {
                thead { tr { th { "Started" } th { "Event" } th { "#" } th { "Status" }
                    th { "Class" } th { "Error" } th { "Duration" } th { "Answer (excerpt)" } } }
                tbody { @for r in recent { tr {
                    td { (when(&r.get::<_, String>(0))) }
                    td { @if let Some(e) = r.get::<_, Option<String>>(1) {
                        a href={ "/events?id=" (path_segment(&e)) "&app=" (path_segment(&l.app)) } { (e) } } }
                    td class="n" { (r.get::<_, i32>(2)) }
                    td class="n" { (r.get::<_, Option<i32>>(3).map(|s| s.to_string()).unwrap_or_default()) }
                    td { (r.get::<_, String>(4)) } td { (r.get::<_, String>(5)) }
                    td class="n" { (r.get::<_, Option<i64>>(6).unwrap_or(0)) " ms" }
                    td { code { (r.get::<_, String>(7)) } }
                } } }
            } }
        }
    }
}

async fn enable(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(refused) = csrf_refusal(&state, &op, &form) {
        return refused;
    }
    match state
        .db
        .query("SELECT hookseal.enable_endpoint($1)", &[&id])
        .await
    {
        Ok(_) => Redirect::to(&format!("/endpoints/{}", path_segment(&id))).into_response(),
        Err(e) => failure(StatusCode::UNPROCESSABLE_ENTITY, Some(&op), &e.to_string()),
    }
}

/// `id` as one URL path segment or query value (ids are `[A-Za-z0-9_-]`;
/// anything else is percent-encoded rather than trusted).
pub(crate) fn path_segment(id: &str) -> String {
    hookseal::percent_encode(id)
}

// ------------------------------------------------------------ one event

#[derive(Deserialize)]
struct EventQuery {
    #[serde(default)]
    id: String,
    app: Option<String>,
}

const EVENT_SQL: &str = "SELECT h.type, h.endpoint_id, h.url, h.status::text, h.attempt,
        to_char(h.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',
        h.http_status, h.error_class, coalesce(h.error, ''), coalesce(left(h.response_body, 200), '')
   FROM hookseal.event_attempts($1, $2) h";

async fn event(
    axum::extract::State(state): axum::extract::State<State>,
    op: Operator,
    Query(q): Query<EventQuery>,
) -> Response {
    let rows = match state.db.query(EVENT_SQL, &[&q.id, &q.app]).await {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::UNPROCESSABLE_ENTITY, Some(&op), &e.to_string()),
    };
    let body = html! {
        @if rows.is_empty() {
            p class="empty" { "No event " code { (q.id) } ": never written, or removed by retention." }
        } @else if rows.len() == 1 && rows[0].get::<_, Option<String>>(1).is_none() {
            p { "Event " code { (q.id) } " (" (rows[0].get::<_, String>(0)) ") matched no endpoint: "
                "no enabled endpoint of its app took this type when it was written, so nothing was or will be sent." }
        } @else {
            div class="scroll" { table {
                thead { tr { th { "Endpoint" } th { "Status" } th { "#" } th { "Started" }
                    th { "HTTP" } th { "Class" } th { "Error" } th { "Answer (excerpt)" } } }
                tbody { @for r in &rows { tr {
                    td { @if let Some(ep) = r.get::<_, Option<String>>(1) { a href={ "/endpoints/" (path_segment(&ep)) } { (ep) } } }
                    td { (r.get::<_, Option<String>>(3).unwrap_or_default()) }
                    td class="n" { (r.get::<_, Option<i32>>(4).map(|a| a.to_string()).unwrap_or_default()) }
                    td { (when(&r.get::<_, Option<String>>(5).unwrap_or_default())) }
                    td class="n" { (r.get::<_, Option<i32>>(6).map(|s| s.to_string()).unwrap_or_default()) }
                    td { (r.get::<_, Option<String>>(7).unwrap_or_default()) }
                    td { (r.get::<_, String>(8)) } td { code { (r.get::<_, String>(9)) } }
                } } }
            } }
        }
    };
    page(&format!("Event {}", q.id), Some(&op), body).into_response()
}
