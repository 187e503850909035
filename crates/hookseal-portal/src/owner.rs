//! The endpoint-owner portal under `/o/`: what the operator's customer
//! sees in an iframe of the operator's settings page. A link
//! (`hookseal.portal_link(app, ttl)`) opens a session for one app; every
//! query here names that app beside any id from the URL or a form, so an
//! id of another app answers 404 and changes nothing. Every action is a
//! POST with the session's CSRF field; URLs pass the dispatchers' address
//! policy before they are stored; a secret is shown on the one page that
//! answers its creation or rotation.

use axum::extract::{Form, Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use maud::{html, Markup};
use serde::Deserialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::auth::{self, Owner};
use crate::pages::{layout, path_segment, rate, when, WINDOW};
use crate::{PortalError, State};

type Db = axum::extract::State<State>;

pub(crate) fn routes() -> Router<State> {
    Router::new()
        .route("/o", get(|| async { Redirect::to("/o/") }))
        .route("/o/", get(home))
        .route("/o/open/{token}", get(open))
        .route("/o/endpoints", post(create))
        .route("/o/endpoints/{id}", get(endpoint))
        .route("/o/endpoints/{id}/edit", post(edit))
        .route("/o/endpoints/{id}/disable", post(disable))
        .route("/o/endpoints/{id}/enable", post(enable))
        .route("/o/endpoints/{id}/delete", post(delete))
        .route("/o/endpoints/{id}/rotate", post(rotate))
        .route("/o/endpoints/{id}/test", post(test_event))
        .route("/o/deliveries/{id}", get(delivery))
        .route("/o/deliveries/{id}/replay", post(replay))
}

fn page(title: &str, body: Markup) -> Response {
    let top = html! { a href="/o/" class="brand" { "Webhooks" } };
    layout(title, top, body).into_response()
}

pub(crate) fn failure(status: StatusCode, what: &str) -> Response {
    let body = html! {
        p class="error" role="alert" { (what) }
        p { a href="/o/" { "Back to your endpoints" } }
    };
    (status, page("Something went wrong", body)).into_response()
}

fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "no such endpoint or delivery here")
}

fn refused(e: &PortalError) -> Response {
    failure(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())
}

/// A form's CSRF field; everything else is the action's own.
#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: Option<String>,
}

fn csrf_refusal(state: &State, owner: &Owner, field: Option<&str>) -> Option<Response> {
    (!owner.csrf_ok(state, field)).then(|| {
        failure(
            StatusCode::FORBIDDEN,
            "this form has expired: reload the page and try again",
        )
    })
}

fn csrf(owner: &Owner) -> Markup {
    html! { input type="hidden" name="csrf" value=(owner.csrf); }
}

fn endpoint_path(id: &str, what: &str) -> String {
    format!("/o/endpoints/{}{what}", path_segment(id))
}

// ------------------------------------------------------------ the link

/// Opens a link: the session cookie for its app, then the endpoints page
/// (so the token leaves the address bar). Unknown and expired links get
/// the same answer.
async fn open(
    axum::extract::State(state): Db,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Response {
    let sql = "SELECT app_id FROM hookseal.open_portal_link($1)";
    let app: Option<String> = match state.db.query(sql, &[&token]).await {
        Ok(rows) => rows.first().map(|r| r.get(0)),
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let Some(app) = app else {
        tracing::info!("owner link refused (unknown or expired)");
        return auth::owner_expired();
    };
    match auth::owner_session(&state, &app) {
        Ok(cookie) => (jar.add(cookie), Redirect::to("/o/")).into_response(),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

// ------------------------------------------------------------ endpoints

/// One of the app's endpoints, with its last 24 hours.
struct Endpoint {
    id: String,
    url: String,
    types: String,
    enabled: bool,
    disabled_reason: Option<String>,
    circuit: String,
    attempts: i64,
    success_rate: Option<f64>,
    last_error: Option<String>,
}

/// The app's endpoints (or only `$2`), with their last 24 hours
/// ([`WINDOW`]).
static ENDPOINTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT h.endpoint_id, h.url, coalesce(array_to_string(e.event_types, ', '), ''),
                h.enabled, e.disabled_reason, h.circuit, h.attempts, h.success_rate, h.last_error
           FROM hookseal.endpoint_health({WINDOW}, ARRAY(
                    SELECT x.id FROM hookseal.endpoints x
                     WHERE x.app_id = $1 AND ($2::text IS NULL OR x.id = $2))) h
           JOIN hookseal.endpoints e ON e.id = h.endpoint_id
          ORDER BY e.created_at, e.id"
    )
});

async fn endpoints(
    state: &State,
    app: &str,
    only: Option<&str>,
) -> Result<Vec<Endpoint>, PortalError> {
    let rows = state.db.query(&ENDPOINTS, &[&app, &only]).await?;
    Ok(rows
        .iter()
        .map(|r| Endpoint {
            id: r.get(0),
            url: r.get(1),
            types: r.get(2),
            enabled: r.get(3),
            disabled_reason: r.get(4),
            circuit: r.get(5),
            attempts: r.get(6),
            success_rate: r.get(7),
            last_error: r.get(8),
        })
        .collect())
}

fn state_of(e: &Endpoint) -> Markup {
    html! {
        @if !e.enabled {
            span class="bad" { "disabled" }
            @if let Some(why) = &e.disabled_reason { " · " (why) }
        } @else if e.circuit != "closed" {
            span class="bad" { "failing: paused until it answers again" }
        } @else {
            span class="ok" { "enabled" }
        }
    }
}

fn types_of(e: &Endpoint) -> &str {
    if e.types.is_empty() {
        "all"
    } else {
        &e.types
    }
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default, rename = "type")]
    event_type: String,
}

async fn home(
    axum::extract::State(state): Db,
    owner: Owner,
    Query(filter): Query<Filter>,
) -> Response {
    let list = match endpoints(&state, &owner.app, None).await {
        Ok(l) => l,
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let recent = match deliveries(&state, &owner.app, None, &filter.event_type).await {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let body = html! {
        h2 { "Endpoints" }
        @if list.is_empty() {
            p class="empty" { "No endpoint yet. Add the URL that should receive this service's events below: "
                "you get its signing secret once, and can send it a test event at once." }
        } @else {
            div class="scroll" { table {
                thead { tr { th { "URL" } th { "Events" } th { "State" } th { "Attempts (24 h)" }
                    th { "Success" } th { "Last error" } } }
                tbody { @for e in &list { tr {
                    td class="url" { a href=(endpoint_path(&e.id, "")) { (e.url) } }
                    td { (types_of(e)) } td { (state_of(e)) }
                    td class="n" { (e.attempts) } td class="n" { (rate(e.success_rate)) }
                    td { (e.last_error.as_deref().unwrap_or("")) }
                } } }
            } }
        }
        h2 { "Add an endpoint" }
        (endpoint_form(&owner, "/o/endpoints", "", "", "Add"))
        h2 { "Deliveries" }
        form method="get" action="/o/" class="find" {
            label for="type" { "Event type" }
            input id="type" name="type" value=(filter.event_type) placeholder="all";
            button type="submit" { "Filter" }
        }
        (deliveries_table(&recent, &filter.event_type))
    };
    page("Webhooks", body)
}

fn endpoint_form(owner: &Owner, to: &str, url: &str, types: &str, verb: &str) -> Markup {
    html! {
        form method="post" action=(to) class="alter" {
            (csrf(owner))
            label { "URL " input name="url" type="url" value=(url) required placeholder="https://example.com/webhooks"; }
            label { "Event types (comma-separated; empty: all) " input name="event_types" value=(types); }
            button type="submit" { (verb) }
        }
    }
}

#[derive(Deserialize)]
struct EndpointForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    url: String,
    #[serde(default)]
    event_types: String,
}

impl EndpointForm {
    /// The listed types; none: every type (NULL).
    fn types(&self) -> Option<Vec<String>> {
        let t: Vec<String> = self
            .event_types
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        (!t.is_empty()).then_some(t)
    }
}

/// The URL as the dispatchers would check it now; the page saying why not.
async fn url_refusal(state: &State, url: &str) -> Option<Response> {
    let why = state.policy.check_destination(url.trim()).await.err()?;
    Some(failure(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("This URL cannot receive webhooks: {why}"),
    ))
}

async fn create(
    axum::extract::State(state): Db,
    owner: Owner,
    Form(form): Form<EndpointForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&state, &owner, form.csrf.as_deref()) {
        return r;
    }
    if let Some(r) = url_refusal(&state, &form.url).await {
        return r;
    }
    let sql =
        "SELECT endpoint_id, secret FROM hookseal.create_endpoint($1, $2, 'native', $3::text[])";
    let url = form.url.trim();
    let rows = match state
        .db
        .query(sql, &[&owner.app, &url, &form.types()])
        .await
    {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let Some(row) = rows.first() else {
        return not_found();
    };
    secret_page(
        "Endpoint added",
        &row.get::<_, String>(0),
        &row.get::<_, String>(1),
        None,
    )
}

/// The one page that shows a secret: answered to the POST that made it
/// (`no-store`, never a redirect, a URL or a log line).
fn secret_page(title: &str, id: &str, secret: &str, grace: Option<&str>) -> Response {
    let body = html! {
        p { "The endpoint's signing secret. It is shown this once: copy it into your receiver now, "
             "which checks each request's " code { "webhook-signature" } " header with it (Standard Webhooks)." }
        @if let Some(g) = grace { p { "The previous secret stays valid for " (g) "." } }
        p { code class="secret" { (secret) } }
        p { a href=(endpoint_path(id, "")) { "Go to the endpoint" } " · " a href="/o/" { "All endpoints" } }
    };
    page(title, body)
}

async fn endpoint(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<String>,
) -> Response {
    let found = endpoints(&state, &owner.app, Some(&id)).await;
    let e = match found.map(|mut l| l.pop()) {
        Ok(Some(e)) => e,
        Ok(None) => return not_found(),
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let recent = match deliveries(&state, &owner.app, Some(&id), "").await {
        Ok(r) => r,
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let body = html! {
        dl {
            dt { "URL" } dd class="url" { (e.url) }
            dt { "Events" } dd { (types_of(&e)) }
            dt { "State" } dd { (state_of(&e)) }
            dt { "Attempts (24 h)" } dd { (e.attempts) " · " (rate(e.success_rate)) " succeeded" }
        }
        (endpoint_actions(&owner, &e))
        h2 { "Deliveries" }
        (deliveries_table(&recent, ""))
        h2 { "Change it" }
        (endpoint_form(&owner, &endpoint_path(&e.id, "/edit"), &e.url, &e.types, "Save"))
    };
    page(&e.url, body)
}

fn endpoint_actions(owner: &Owner, e: &Endpoint) -> Markup {
    let form = |what: &str, label: &str, extra: Markup| {
        html! {
            form method="post" action=(endpoint_path(&e.id, what)) {
                (csrf(owner)) (extra) button type="submit" { (label) }
            }
        }
    };
    html! {
        h2 { "Actions" }
        div class="actions" {
            @if e.enabled {
                (form("/test", "Send a test event", html! {}))
                (form("/disable", "Disable", html! {}))
            } @else {
                (form("/enable", "Enable", html! {}))
            }
            (form("/rotate", "Rotate the secret", html! {
                label { "Old secret valid for " input name="grace" value="24 hours" size="10"; }
            }))
            (form("/delete", "Delete this endpoint", html! {
                label { input type="checkbox" name="confirm" value="yes" required; " delete it, its secret and its deliveries" }
            }))
        }
    }
}

/// Runs `sql` with `$1` the endpoint and `$2` the session's app (and the
/// rest of `more`): the statement must select from `hookseal.endpoints e`
/// `WHERE e.id = $1 AND e.app_id = $2`, so another app's id matches no row.
async fn scoped(
    state: &State,
    owner: &Owner,
    id: &str,
    sql: &str,
    more: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, PortalError> {
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&id, &owner.app];
    params.extend_from_slice(more);
    Ok(state.db.query(sql, &params).await?.into_iter().next())
}

/// A scoped action that answers by going back to the endpoint's page.
async fn act(state: &State, owner: &Owner, id: &str, field: Option<&str>, sql: &str) -> Response {
    if let Some(r) = csrf_refusal(state, owner, field) {
        return r;
    }
    match scoped(state, owner, id, sql, &[]).await {
        Ok(Some(_)) => Redirect::to(&endpoint_path(id, "")).into_response(),
        Ok(None) => not_found(),
        Err(e) => refused(&e),
    }
}

async fn edit(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<String>,
    Form(form): Form<EndpointForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&state, &owner, form.csrf.as_deref()) {
        return r;
    }
    if let Some(r) = url_refusal(&state, &form.url).await {
        return r;
    }
    let sql = "SELECT hookseal.alter_endpoint(e.id, jsonb_build_object('url', $3::text, 'event_types', $4::text[]))
                 FROM hookseal.endpoints e WHERE e.id = $1 AND e.app_id = $2";
    let url = form.url.trim();
    match scoped(&state, &owner, &id, sql, &[&url, &form.types()]).await {
        Ok(Some(_)) => Redirect::to(&endpoint_path(&id, "")).into_response(),
        Ok(None) => not_found(),
        Err(e) => refused(&e),
    }
}

async fn disable(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let sql = "SELECT hookseal.disable_endpoint(e.id) FROM hookseal.endpoints e WHERE e.id = $1 AND e.app_id = $2";
    act(&state, &owner, &id, f.csrf.as_deref(), sql).await
}

async fn enable(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let sql = "SELECT hookseal.enable_endpoint(e.id) FROM hookseal.endpoints e WHERE e.id = $1 AND e.app_id = $2";
    act(&state, &owner, &id, f.csrf.as_deref(), sql).await
}

async fn test_event(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let sql = "SELECT hookseal.send_test_event(e.id) FROM hookseal.endpoints e WHERE e.id = $1 AND e.app_id = $2";
    act(&state, &owner, &id, f.csrf.as_deref(), sql).await
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    confirm: String,
}

async fn delete(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<String>,
    Form(f): Form<DeleteForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&state, &owner, f.csrf.as_deref()) {
        return r;
    }
    if f.confirm != "yes" {
        return failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tick the box to confirm the deletion",
        );
    }
    let sql = "SELECT hookseal.delete_endpoint(e.id) FROM hookseal.endpoints e WHERE e.id = $1 AND e.app_id = $2";
    match scoped(&state, &owner, &id, sql, &[]).await {
        Ok(Some(_)) => Redirect::to("/o/").into_response(),
        Ok(None) => not_found(),
        Err(e) => refused(&e),
    }
}

#[derive(Deserialize)]
struct RotateForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    grace: String,
}

async fn rotate(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<String>,
    Form(f): Form<RotateForm>,
) -> Response {
    if let Some(r) = csrf_refusal(&state, &owner, f.csrf.as_deref()) {
        return r;
    }
    let sql = "SELECT r.secret FROM hookseal.endpoints e
                 CROSS JOIN LATERAL hookseal.rotate_secret(e.id, $3::text::interval) r
                WHERE e.id = $1 AND e.app_id = $2";
    match scoped(&state, &owner, &id, sql, &[&f.grace]).await {
        Ok(Some(row)) => secret_page("New secret", &id, &row.get::<_, String>(0), Some(&f.grace)),
        Ok(None) => not_found(),
        Err(e) => refused(&e),
    }
}

// ------------------------------------------------------------ deliveries

/// The newest deliveries of the app (or of one endpoint), optionally of
/// one event type: the app's newest events first (their `(app_id,
/// created_at)` index), each with its outbox rows.
const DELIVERIES_SQL: &str =
    "SELECT o.id, to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',
        v.type, o.event_id, ep.url, o.status::text, o.attempts, o.last_status
   FROM hookseal.events v
   JOIN hookseal.outbox o ON o.event_id = v.id AND o.app_id = v.app_id
   JOIN hookseal.endpoints ep ON ep.id = o.endpoint_id
  WHERE v.app_id = $1 AND ($2::text IS NULL OR o.endpoint_id = $2) AND ($3 = '' OR v.type = $3)
  ORDER BY v.created_at DESC, o.id DESC LIMIT 50";

async fn deliveries(
    state: &State,
    app: &str,
    endpoint: Option<&str>,
    event_type: &str,
) -> Result<Vec<Row>, PortalError> {
    let t = event_type.trim();
    state.db.query(DELIVERIES_SQL, &[&app, &endpoint, &t]).await
}

fn deliveries_table(rows: &[Row], event_type: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            @if event_type.trim().is_empty() {
                p class="empty" { "No delivery yet: events appear here as soon as they are sent. "
                    "Send a test event from an endpoint's page to see one." }
            } @else {
                p class="empty" { "No delivery of type " code { (event_type) } " among the newest." }
            }
        } @else {
            div class="scroll" { table {
                thead { tr { th { "Written" } th { "Event type" } th { "Event" } th { "Endpoint" }
                    th { "Status" } th { "Attempts" } th { "Last HTTP" } } }
                tbody { @for r in rows { tr {
                    td { a href={ "/o/deliveries/" (r.get::<_, i64>(0)) } { (when(&r.get::<_, String>(1))) } }
                    td { (r.get::<_, String>(2)) } td { code { (r.get::<_, String>(3)) } }
                    td class="url" { (r.get::<_, String>(4)) } td { (r.get::<_, String>(5)) }
                    td class="n" { (r.get::<_, i32>(6)) }
                    td class="n" { (r.get::<_, Option<i32>>(7).map(|s| s.to_string()).unwrap_or_default()) }
                } } }
            } }
        }
    }
}

const DELIVERY_SQL: &str =
    "SELECT o.event_id, v.type, ep.url, o.status::text, o.body, o.endpoint_id
   FROM hookseal.outbox o
   JOIN hookseal.events v ON v.id = o.event_id AND v.app_id = o.app_id
   JOIN hookseal.endpoints ep ON ep.id = o.endpoint_id
  WHERE o.id = $1 AND o.app_id = $2";

const ATTEMPTS_SQL: &str =
    "SELECT to_char(t.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',
        t.attempt, t.http_status, t.error_class, coalesce(t.error, ''),
        round(extract(epoch FROM t.finished_at - t.started_at) * 1000)::bigint,
        coalesce(left(t.response_body, 500), '')
   FROM hookseal.attempts t WHERE t.outbox_id = $1 ORDER BY t.started_at, t.attempt";

async fn delivery(axum::extract::State(state): Db, owner: Owner, Path(id): Path<i64>) -> Response {
    let row = match state.db.query(DELIVERY_SQL, &[&id, &owner.app]).await {
        Ok(rows) => match rows.into_iter().next() {
            Some(r) => r,
            None => return not_found(),
        },
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    // The row is the session app's (above): its attempts are too.
    let attempts = match state.db.query(ATTEMPTS_SQL, &[&id]).await {
        Ok(a) => a,
        Err(e) => return failure(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let status: String = row.get(3);
    let body = html! {
        dl {
            dt { "Event" } dd { code { (row.get::<_, String>(0)) } " · " (row.get::<_, String>(1)) }
            dt { "Endpoint" } dd class="url" { a href=(endpoint_path(&row.get::<_, String>(5), "")) { (row.get::<_, String>(2)) } }
            dt { "Status" } dd { (status) }
        }
        @if status == "delivered" || status == "dead" {
            form method="post" action={ "/o/deliveries/" (id) "/replay" } {
                (csrf(&owner)) button type="submit" { "Send it again" }
            }
        }
        h2 { "Attempts" }
        (attempts_table(&attempts))
        h2 { "Payload" }
        pre class="payload" { (row.get::<_, String>(4)) }
    };
    page("Delivery", body)
}

fn attempts_table(rows: &[Row]) -> Markup {
    html! {
        @if rows.is_empty() {
            p class="empty" { "Not attempted yet: it is queued and goes out within seconds while a dispatcher runs." }
        } @else {
            div class="scroll" { table {
                thead { tr { th { "Started" } th { "#" } th { "HTTP" } th { "Result" } th { "Error" }
                    th { "Duration" } th { "Answer (excerpt)" } } }
                tbody { @for r in rows { tr {
                    td { (when(&r.get::<_, String>(0))) } td class="n" { (r.get::<_, i32>(1)) }
                    td class="n" { (r.get::<_, Option<i32>>(2).map(|s| s.to_string()).unwrap_or_default()) }
                    td { (r.get::<_, String>(3)) } td { (r.get::<_, String>(4)) }
                    td class="n" { (r.get::<_, Option<i64>>(5).unwrap_or(0)) " ms" }
                    td { code { (r.get::<_, String>(6)) } }
                } } }
            } }
        }
    }
}

async fn replay(
    axum::extract::State(state): Db,
    owner: Owner,
    Path(id): Path<i64>,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = csrf_refusal(&state, &owner, f.csrf.as_deref()) {
        return r;
    }
    let sql = "SELECT hookseal.replay_delivery(o.id) FROM hookseal.outbox o WHERE o.id = $1 AND o.app_id = $2";
    match state.db.query(sql, &[&id, &owner.app]).await {
        Ok(rows) if rows.is_empty() => not_found(),
        Ok(_) => Redirect::to(&format!("/o/deliveries/{id}")).into_response(),
        Err(e) => refused(&e),
    }
}
