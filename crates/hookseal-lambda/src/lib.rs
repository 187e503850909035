//! # hookseal-lambda
//!
//! hookseal behind an AWS Lambda Function URL, configured by environment
//! variables the way a Vercel deployment is (`WEBHOOK_URL` names the POST
//! route that receives every message):
//!
//! - **receive**: `POST` on a configured path is verified by its scheme
//!   (any preset or a described one) and answered per the scheme's status
//!   table (405, 400/401/403, 413, 200), with a small JSON body;
//! - **relay**: a verified message is re-signed (`x-signature` by default)
//!   and forwarded to `WEBHOOK_URL` with its body and message id
//!   (`idempotency-key`); a downstream failure answers 502/504 so the
//!   provider retries — or, with `DATABASE_URL`, the event is stored in the
//!   hookseal outbox (under its route's app) and answered 200 once
//!   committed; with neither the function refuses to start, unless
//!   `HOOKSEAL_MODE=verify-only` asks it only to verify and answer;
//! - **dispatch**: a scheduled invocation or an authenticated
//!   `POST /dispatch` drains the outbox within the invocation's time budget.
//!
//! The handler is an axum [`Router`](axum::Router): `bootstrap` runs it
//! under the Lambda runtime, or as a plain local server outside Lambda.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod event;

pub use app::{App, AppError};
pub use config::{ConfigError, Loader, Settings};
pub use event::{handle, is_schedule};
