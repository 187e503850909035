//! Who may use the console, all through [`hookseal::TokenKey`] tokens:
//!
//! - an **operator sign-in token** (purpose `operator`), made by
//!   [`operator_token`] (`hookseal portal-token --operator`), pasted once
//!   into the sign-in form, never put in a URL;
//! - the **session** it buys (purpose `session`, claims `operator SID
//!   EXPIRY`), an HttpOnly, SameSite=Strict cookie;
//! - a **CSRF field** per session (purpose `csrf`, claims the session id)
//!   in every form; a state-changing request without it is refused (403).
//!
//! - an **owner session** (purpose `owner-session`, claims `owner APP SID
//!   EXPIRY`), bought by opening a link `hookseal.portal_link(app, ttl)`
//!   made (the database keeps the link's hash and expiry), in a cookie of
//!   its own on `/o/`: `SameSite=None; Partitioned` so it works in the
//!   operator's iframe, which is why every owner form carries its CSRF
//!   field (purpose `owner-csrf`). Every owner query names the session's
//!   app.
//!
//! A token of one purpose never passes for another, an expired one is
//! refused, and none is written to a log.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use hookseal::{TokenError, TokenKey, UnixTime};

use crate::State;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hookseal_session";

/// How long a session lasts from sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How long an operator sign-in token is valid by default.
pub const OPERATOR_TTL: Duration = Duration::from_secs(3600);

const OPERATOR: &str = "operator";
const SESSION: &str = "session";
const CSRF: &str = "csrf";
const OWNER: &str = "owner";
const OWNER_SESSION: &str = "owner-session";
const OWNER_CSRF: &str = "owner-csrf";

/// The owner session cookie's name.
pub const OWNER_COOKIE: &str = "hookseal_owner";

/// How long an owner session lasts from opening its link (never longer:
/// the operator's page makes a new link at every view).
pub const OWNER_SESSION_TTL: Duration = Duration::from_secs(2 * 3600);

/// An operator sign-in token valid for `ttl` from now.
pub fn operator_token(key: &TokenKey, ttl: Duration) -> String {
    key.sign(OPERATOR, OPERATOR, later(ttl))
}

fn later(ttl: Duration) -> UnixTime {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    UnixTime::from_millis(UnixTime::now().as_millis().saturating_add(ms))
}

/// A signed-in operator (the request's session cookie opened).
pub(crate) struct Operator {
    /// The session's id (random, per sign-in).
    pub(crate) sid: String,
    /// The CSRF field value of this session's forms.
    pub(crate) csrf: String,
}

impl FromRequestParts<State> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let opened = jar
            .get(SESSION_COOKIE)
            .and_then(|c| state.key.open(SESSION, c.value(), UnixTime::now()).ok());
        let Some(claims) = opened else {
            return Err(Redirect::to("/login").into_response());
        };
        let mut words = claims.split(' ');
        let (Some(OPERATOR), Some(sid), Some(expiry)) = (words.next(), words.next(), words.next())
        else {
            return Err(Redirect::to("/login").into_response());
        };
        let expires = UnixTime::from_secs(expiry.parse().unwrap_or(0));
        Ok(Operator {
            sid: sid.to_owned(),
            csrf: state.key.sign(CSRF, sid, expires),
        })
    }
}

impl Operator {
    /// Whether `field` is this session's CSRF value.
    pub(crate) fn csrf_ok(&self, state: &State, field: Option<&str>) -> bool {
        csrf_matches(state, CSRF, field, &self.sid)
    }
}

/// Why a sign-in was refused, as the form says it.
pub(crate) fn refusal(e: &TokenError) -> &'static str {
    match e {
        TokenError::Expired => "this sign-in token has expired: make a new one with hookseal portal-token --operator",
        _ => "not a sign-in token of this portal (made with hookseal portal-token --operator and this portal's key)",
    }
}

/// Opens a pasted operator token; on success, the session cookie to set.
pub(crate) fn sign_in(state: &State, token: &str) -> Result<Cookie<'static>, TokenError> {
    let claims = state.key.open(OPERATOR, token.trim(), UnixTime::now())?;
    if claims != OPERATOR {
        return Err(TokenError::BadSignature);
    }
    let sid = session_id()?;
    let expires = later(SESSION_TTL);
    let value = state.key.sign(
        SESSION,
        &format!("{OPERATOR} {sid} {}", expires.as_secs()),
        expires,
    );
    Ok(session_cookie(state, value))
}

/// The cookie that ends the session (same name and path, removed).
pub(crate) fn sign_out(state: &State) -> Cookie<'static> {
    let mut c = session_cookie(state, String::new());
    c.make_removal();
    c
}

/// A browser-session cookie: the token inside expires by itself after
/// [`SESSION_TTL`], whatever the browser keeps.
fn session_cookie(state: &State, value: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Strict)
        .path("/")
        .build()
}

/// Whether `field` is a live CSRF token of `purpose` for session `sid`.
fn csrf_matches(state: &State, purpose: &str, field: Option<&str>, sid: &str) -> bool {
    field
        .and_then(|f| state.key.open(purpose, f, UnixTime::now()).ok())
        .is_some_and(|claimed| claimed == sid)
}

fn session_id() -> Result<String, TokenError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|_| TokenError::Random)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// An endpoint owner: the request's owner cookie opened. Every query of
/// the owner pages is scoped to `app`.
pub(crate) struct Owner {
    /// The one app this session may read and change.
    pub(crate) app: String,
    sid: String,
    /// The CSRF field value of this session's forms.
    pub(crate) csrf: String,
}

/// What an owner request without a live session gets: a page, not a
/// sign-in form (owners come through their operator's links).
pub(crate) fn owner_expired() -> Response {
    crate::owner::failure(
        axum::http::StatusCode::UNAUTHORIZED,
        concat!(
            "This page's session has expired or was never opened: open the webhooks page again ",
            "from the service you came from (its links work for a short time)."
        ),
    )
}

impl FromRequestParts<State> for Owner {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let claims = jar
            .get(OWNER_COOKIE)
            .and_then(|c| {
                state
                    .key
                    .open(OWNER_SESSION, c.value(), UnixTime::now())
                    .ok()
            })
            .ok_or_else(owner_expired)?;
        let mut words = claims.split(' ');
        let (Some(OWNER), Some(app), Some(sid), Some(expiry), None) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            return Err(owner_expired());
        };
        let expires = UnixTime::from_secs(expiry.parse().unwrap_or(0));
        Ok(Owner {
            app: app.to_owned(),
            sid: sid.to_owned(),
            csrf: state.key.sign(OWNER_CSRF, sid, expires),
        })
    }
}

impl Owner {
    /// Whether `field` is this session's CSRF value.
    pub(crate) fn csrf_ok(&self, state: &State, field: Option<&str>) -> bool {
        csrf_matches(state, OWNER_CSRF, field, &self.sid)
    }
}

/// The owner session cookie for `app` (an id the database gave: no
/// space), valid for [`OWNER_SESSION_TTL`] from now.
pub(crate) fn owner_session(state: &State, app: &str) -> Result<Cookie<'static>, TokenError> {
    if app.is_empty() || app.contains(char::is_whitespace) {
        return Err(TokenError::Malformed);
    }
    let sid = session_id()?;
    let expires = later(OWNER_SESSION_TTL);
    let value = state.key.sign(
        OWNER_SESSION,
        &format!("{OWNER} {app} {sid} {}", expires.as_secs()),
        expires,
    );
    let c = Cookie::build((OWNER_COOKIE, value))
        .http_only(true)
        .path("/o/");
    // In the operator's iframe the portal is a third party: its cookie is
    // sent only as SameSite=None, which browsers take only with Secure;
    // Partitioned keeps it to that embedding site (CHIPS).
    Ok(if state.secure_cookies {
        c.secure(true)
            .same_site(SameSite::None)
            .partitioned(true)
            .build()
    } else {
        c.same_site(SameSite::Lax).build()
    })
}
