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
        field
            .and_then(|f| state.key.open(CSRF, f, UnixTime::now()).ok())
            .is_some_and(|sid| sid == self.sid)
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
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(|_| TokenError::Random)?;
    let sid: String = raw.iter().map(|b| format!("{b:02x}")).collect();
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
