//! Issue 24: one trace from the transaction that sends an event to the
//! receiver that verifies it, exported over OTLP to a real receiver on
//! 127.0.0.1 (hookseal_testdb::otlp, the official protobufs):
//! the application's span, whose `traceparent` the transaction sets with
//! `SET LOCAL hookseal.traceparent`; `hookseal dispatch`'s claim, attempt
//! and ack; `hookseal receive`'s request and its verification. No span holds the secret,
//! the signature or the body. Needs the test cluster
//! (`scripts/dispatch-test.sh`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hookseal_otel::{TraceContextExt, Tracer};
use hookseal_testdb::otlp::{Collector, Span};

const BIN: &str = env!("CARGO_BIN_EXE_hookseal");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `hookseal <args>` exporting to `collector`, batches sent within 100 ms.
fn hookseal(args: &[&str], collector: &Collector, env: &[(&str, &str)]) -> Child {
    Command::new(BIN)
        .args(args)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_SERVICE_NAME")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_for(collector: &Collector, what: &str, ok: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    let start = Instant::now();
    loop {
        let spans = collector.spans();
        if ok(&spans) {
            return spans;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {what}: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "{name}: {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn one_trace_from_the_sending_transaction_to_the_receiver() {
    let collector = Collector::start().await;
    let port = free_port();
    let name = format!("t_tracing_{}", std::process::id());
    let admin = hookseal_testdb::from_template(&name).await;
    let app: String = admin
        .query_one("SELECT hookseal.create_app('shop')", &[])
        .await
        .unwrap()
        .get(0);
    let secret: String = admin
        .query_one(
            "SELECT secret FROM hookseal.create_endpoint($1, $2, 'native')",
            &[&app, &format!("http://127.0.0.1:{port}/hook")],
        )
        .await
        .unwrap()
        .get(0);
    let mut receive = hookseal(
        &[
            "receive",
            "--scheme",
            "native",
            "--secret-env",
            "S",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &collector,
        &[("S", secret.as_str())],
    );

    // The application: its own span, exported by the same SDK, and its
    // transaction handing the span's traceparent to webhook_send.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint());
    let telemetry = hookseal_otel::Telemetry::init("shop").unwrap();
    assert!(telemetry.exporting());
    let tracer = hookseal_otel::tracer();
    let checkout = tracer.start("checkout");
    let cx = hookseal_otel::Context::new().with_span(checkout);
    let traceparent = hookseal_otel::traceparent(&cx).unwrap();
    admin
        .batch_execute(&format!(
            "BEGIN; SET LOCAL hookseal.traceparent = '{traceparent}';
             SELECT hookseal.webhook_send('{app}', 'order.paid', '{{\"card\": \"marker-4242\"}}');
             COMMIT;
             SELECT hookseal.webhook_send('{app}', 'order.untraced', '{{}}');"
        ))
        .await
        .unwrap();
    cx.span().end();
    telemetry.flush();

    let url = format!(
        "postgres://hookseal_test_dispatcher@{}/{name}",
        hookseal_testdb::pg()
    );
    let mut dispatch = hookseal(
        &[
            "dispatch",
            "--drain",
            "--allow",
            "127.0.0.0/8",
            "--worker-id",
            "tracer",
        ],
        &collector,
        &[("DATABASE_URL", url.as_str())],
    );
    let start = Instant::now();
    while dispatch.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the drain did not end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = wait_for(&collector, "receiver span", |s| {
        s.iter().filter(|x| x.name == "hookseal.verify").count() >= 2
            && s.iter().filter(|x| x.name == "hookseal.receive").count() >= 2
            && s.iter().any(|x| x.name == "hookseal.ack")
    })
    .await;
    let _ = receive.kill();
    let _ = receive.wait();

    let app_span = one(&spans, "checkout");
    let (claim, attempt, ack) = (
        one(&spans, "hookseal.claim"),
        one(&spans, "hookseal.attempt"),
        one(&spans, "hookseal.ack"),
    );
    let in_trace = |name: &str| -> &Span {
        let found: Vec<&Span> = spans
            .iter()
            .filter(|s| s.name == name && s.trace_id == app_span.trace_id)
            .collect();
        assert_eq!(found.len(), 1, "the traced delivery's {name}: {spans:#?}");
        found[0]
    };
    let (received, verify) = (in_trace("hookseal.receive"), in_trace("hookseal.verify"));
    assert_eq!(
        (app_span.service.as_str(), claim.service.as_str()),
        ("shop", "hookseal-dispatch")
    );
    assert_eq!(
        (received.service.as_str(), verify.service.as_str()),
        ("hookseal-receive", "hookseal-receive")
    );
    for s in [claim, attempt, ack, received, verify] {
        assert_eq!(
            s.trace_id, app_span.trace_id,
            "{} is in the sender's trace",
            s.name
        );
    }
    assert_eq!(
        claim.parent, app_span.span_id,
        "the claim continues the sending span"
    );
    assert_eq!(attempt.parent, claim.span_id);
    assert_eq!(
        received.parent, attempt.span_id,
        "the receiver continues the attempt's span"
    );
    assert_eq!(verify.parent, received.span_id);
    assert_eq!(ack.parent, attempt.span_id);
    assert!(
        attempt
            .attributes
            .contains(&"http.response.status_code=200".to_owned()),
        "{attempt:?}"
    );
    // The untraced event was delivered without a claim or attempt span.
    let delivered: i64 = admin
        .query_one(
            "SELECT count(*) FROM hookseal.outbox WHERE status = 'delivered'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(delivered, 2);

    // No span holds the secret (whole or without its prefix), the
    // signature or the body; the body's marker proves the search can find.
    let row = admin
        .query_one(
            "SELECT body, headers->>'x-webhook-signature' FROM hookseal.outbox WHERE body LIKE '%marker-4242%'",
            &[],
        )
        .await
        .unwrap();
    let (body, signature): (String, Option<String>) = (row.get(0), row.get(1));
    assert!(body.contains("marker-4242"));
    let bare = secret.split_once('_').map_or(secret.as_str(), |(_, b)| b);
    let mut needles = vec![secret.as_str(), bare, "marker-4242", body.as_str()];
    needles.extend(
        signature
            .as_deref()
            .and_then(|s| s.split_once(','))
            .map(|(_, mac)| mac),
    );
    for s in &spans {
        for n in &needles {
            assert!(!s.text.contains(n), "span {} holds {n:?}", s.name);
        }
    }
    drop(telemetry);
}
