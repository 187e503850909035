//! `hookseal receive`: a local endpoint that verifies every webhook it gets,
//! answers as SCHEMES.md's status table says, and writes one JSON line per
//! request — for developing a sender, and for the dispatcher's tests and
//! benchmarks.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State as Shared;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use clap::Args;
use hookseal::{Scheme, Secret, UnixTime};
use hookseal_axum::{json_response, MemoryReplayStore, Receiver, Rejection, Webhook};
use serde_json::json;

use crate::{failed, usage, Fail};

#[derive(Args)]
pub struct ReceiveArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    limits: crate::Limits,
    /// Wait this long before answering (to act as a slow receiver).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Answer 500 to this share (0-100) of verified requests, at random, to
    /// test a sender's retries. Such lines say "status":500.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fail_percent: u8,
    /// Append the JSON lines to this file instead of stdout.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Refuse (409) a message id already accepted within the tolerance
    /// window (remembered in memory).
    #[arg(long)]
    replay_guard: bool,
}

struct State {
    delay: Duration,
    fail_percent: u8,
    /// xorshift64 state for fail_percent (fault injection, not cryptography).
    dice: std::sync::atomic::AtomicU64,
    out: Mutex<Box<dyn Write + Send>>,
}

pub fn run(args: ReceiveArgs, scheme: Scheme, secrets: Vec<Secret>) -> Result<u8, Fail> {
    // A long-running receiver takes the configured-secret floor, as the
    // Lambda's configuration does (one-shot `hookseal verify` keeps the
    // scheme's own minimum, so published vectors still check).
    for (n, secret) in secrets.iter().enumerate() {
        scheme
            .check_configured_secret(secret)
            .map_err(|e| usage(format!("secret {}: {e}", n + 1)))?;
    }
    let verifier = args.limits.verifier(scheme, &secrets)?;
    let mut receiver = Receiver::new(verifier);
    if args.replay_guard {
        receiver = receiver.replay_guard(MemoryReplayStore::default());
    }
    let out: Box<dyn Write + Send> = match &args.log {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| usage(format!("cannot open {}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let state = Arc::new(State {
        delay: Duration::from_millis(args.delay_ms),
        fail_percent: args.fail_percent,
        dice: std::sync::atomic::AtomicU64::new(now_ms() | 1),
        out: Mutex::new(out),
    });
    let _telemetry = crate::telemetry("hookseal-receive")?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| failed(format!("runtime: {e}")))?;
    rt.block_on(serve(args.listen, receiver, state))
}

/// Every path is the webhook route (senders under test pick their own);
/// verification, the body limit and every refusal are the shared receive
/// wing's (`hookseal-axum`), answered in its JSON shape.
async fn serve(addr: SocketAddr, receiver: Receiver, state: Arc<State>) -> Result<u8, Fail> {
    let route = receiver.post(handle);
    let app = Router::new()
        .route("/", route.clone())
        .route("/{*path}", route)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            log_rejection,
        ))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| failed(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| failed(e.to_string()))?;
    eprintln!("hookseal receive: listening on http://{bound}/");
    let flusher = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = state.out.lock().unwrap_or_else(|p| p.into_inner()).flush();
            }
        })
    };
    let stop = crate::stop_signal()?;
    // On SIGTERM: stop accepting, and wait at most 1 s for open
    // connections (a sender's idle keep-alive must not hold the exit).
    let served = hookseal_axum::serve(listener, app, stop, Duration::from_secs(1)).await;
    flusher.abort();
    let _ = state.out.lock().unwrap_or_else(|p| p.into_inner()).flush();
    served.map_err(|e| failed(format!("server: {e}")))?;
    Ok(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A verified request: one JSON line, then 200 (or the injected 500).
async fn handle(Shared(state): Shared<Arc<State>>, hook: Webhook) -> Response {
    let received = now_ms();
    let event = hookseal::json::string_field(&hook.body, "id").ok();
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    if state.roll_fail() {
        state.log(
            json!({"t_ms": received, "ok": true, "id": hook.id, "event": event, "status": 500}),
        );
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "injected_failure", "message": "--fail-percent chose this request"}),
        );
    }
    state.log(
        json!({"t_ms": received, "ok": true, "id": hook.id, "event": event,
                     "ts_ms": hook.verified.timestamp.map(UnixTime::as_millis)}),
    );
    json_response(StatusCode::OK, json!({"ok": true, "id": hook.id}))
}

/// A refused request (the wing's `Rejection` rides on its response): one line.
async fn log_rejection(Shared(state): Shared<Arc<State>>, response: Response) -> Response {
    if let Some(r) = response.extensions().get::<Rejection>() {
        state.log(json!({"t_ms": now_ms(), "ok": false, "id": r.message_id(), "code": r.code()}));
    }
    response
}

impl State {
    /// True for a random fail_percent of calls.
    fn roll_fail(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if self.fail_percent == 0 {
            return false;
        }
        let mut x = 0;
        let _ = self.dice.fetch_update(Relaxed, Relaxed, |mut v| {
            v ^= v << 13;
            v ^= v >> 7;
            v ^= v << 17;
            x = v;
            Some(v)
        });
        x % 100 < u64::from(self.fail_percent)
    }

    fn log(&self, line: serde_json::Value) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
    }
}
