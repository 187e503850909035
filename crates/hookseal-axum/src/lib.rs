//! # hookseal-axum
//!
//! Verify inbound webhooks in an [axum](https://docs.rs/axum) service, by
//! any hookseal scheme (the ten presets or one you describe), with rotating
//! secrets, a body limit, the contract's status table, and a replay guard.
//!
//! ```no_run
//! use axum::Router;
//! use hookseal::{Scheme, Secret, Verifier};
//! use hookseal_axum::{MemoryReplayStore, Receiver, Webhook};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = Secret::new(std::env::var("STRIPE_WEBHOOK_SECRET")?)?;
//! let verifier = Verifier::new(Scheme::preset("stripe")?, &[secret])?;
//! let stripe = Receiver::new(verifier).replay_guard(MemoryReplayStore::default());
//! let app = Router::new().route(
//!     "/hooks/stripe",
//!     stripe.post(|hook: Webhook| async move { format!("got {}", hook.id) }),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! What a refused request gets ([`Rejection`], always
//! `{"error": code, "message": text}` as JSON):
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `missing_header`, `malformed_header`, `missing_signed_header`, `missing_query_parameter`, `malformed_query_parameter`, `body_not_json`, `body_unreadable` | the request cannot be checked |
//! | the scheme's (401, 403 or 400) | `no_matching_signature`, `timestamp_too_old`, `timestamp_too_new` | it was checked and is not authentic or not fresh |
//! | 404 | `not_found` | no route for the path (the Lambda's and `hookseal receive`'s routers) |
//! | 405 (`Allow: POST`) | `method_not_allowed` | not a POST |
//! | 409 | `replayed` | the message id was accepted within the replay window |
//! | 413 | `body_too_large` | the body exceeds the limit (256 KiB by default) |
//! | 431 | `headers_too_large` | the headers exceed 64 KiB or 100 fields (read that far by `serve`, feature `serve`) |
//! | 500 | `receiver_not_configured` | a `Webhook` extractor on a route without the receiver layer (a bug in the service) |
//! | 503 | `replay_store_unavailable` | the replay guard could not be asked; the request is refused, not let through |
//!
//! The replay guard remembers an id from the moment its handler answers
//! 2xx until the request's timestamp plus the tolerance (after which the
//! signature no longer verifies), or for [`Receiver::replay_window`] after
//! receipt for schemes without a timestamp. An id whose handler failed is
//! forgotten, so the sender's retry goes through; two concurrent requests
//! with one id run the handler once. Stores: [`MemoryReplayStore`] (one
//! process, bounded) and, with the `postgres` feature, `PgReplayStore`
//! (one table, shared by replicas).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod receiver;
mod rejection;
mod replay;
#[cfg(feature = "postgres")]
mod replay_pg;
#[cfg(feature = "serve")]
mod serve;

/// Most bytes of request headers a receiver reads (names, values, `: ` and
/// CRLF, as on the wire); more is refused with a JSON 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields a receiver reads; more is refused with a JSON 431.
pub const MAX_HEADERS: usize = 100;

pub use receiver::{Receiver, VerifyLayer, VerifyService, Webhook};
pub use rejection::{
    json_response, method_not_allowed, not_found, refusal_table, Refusal, Rejection, REFUSALS,
};
pub use replay::{BoxFuture, MemoryReplayStore, ReplayError, ReplayStore, DEFAULT_MEMORY_CAPACITY};
#[cfg(feature = "postgres")]
pub use replay_pg::{Connector, PgReplayStore, PURGE_EVERY, REPLAY_TABLE_SQL};
#[cfg(feature = "serve")]
pub use serve::{serve, PARSER_MAX_BUF, PARSER_MAX_HEADERS};
