//! The Lambda with `DATABASE_URL`: verified messages are stored in the
//! hookseal outbox (idempotently, under the provider's id) and `POST
//! /dispatch` drains the outbox to the app's endpoints. Needs PostgreSQL:
//! `scripts/dispatch-test.sh` runs these with `--ignored`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use hookseal::{Message, Scheme, Secret, Signer, Verifier};
use hookseal_lambda::{handle, App, Loader};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

mod common;
use common::{call, event, receiver};

const GH_SECRET: &str = "gh-webhook-secret-1";

use hookseal_testdb::{pg, portable, superuser as sql};

/// The portable flavour's sealing key, as the Lambda's SEALING_KEY.
fn sealing_key() -> Option<String> {
    let file = hookseal_testdb::sealing_key_file()?;
    Some(std::fs::read_to_string(file).expect("HOOKSEAL_TEST_SEALING_KEY_FILE is readable"))
}

async fn app(vars: HashMap<&'static str, String>) -> (Arc<App>, Router) {
    let env = move |k: &str| vars.get(k).cloned();
    let app = App::new(Loader::new(&env).load().await.unwrap()).unwrap();
    let router = app.router();
    (app, router)
}

fn github(body: &[u8]) -> Vec<(String, String)> {
    Signer::new(
        Scheme::preset("github").unwrap(),
        &[Secret::new(GH_SECRET).unwrap()],
    )
    .unwrap()
    .sign(&Message::new(body))
    .unwrap()
    .headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn stores_idempotently_then_dispatches_to_the_endpoints() {
    let name = format!("t_lambda_{}", std::process::id());
    let admin = hookseal_testdb::from_template(&name).await;
    let root = sql("postgres").await;
    let app_id: String = admin
        .query_one("SELECT hookseal.create_app('lambda')", &[])
        .await
        .unwrap()
        .get(0);
    let (url, seen) = receiver(200).await;
    let row = admin
        .query_one(
            "SELECT secret FROM hookseal.create_endpoint($1, $2, 'native')",
            &[&app_id, &url],
        )
        .await
        .unwrap();
    let endpoint_secret: String = row.get(0);

    let mut vars: HashMap<&'static str, String> = [
        ("INBOUND_SCHEME", "github".to_owned()),
        ("INBOUND_SECRET", GH_SECRET.to_owned()),
        (
            "DATABASE_URL",
            format!("postgres://hookseal_test_lambda@{}/{name}", pg()),
        ),
        ("HOOKSEAL_APP", app_id.clone()),
        ("DISPATCH_TOKEN", "tok-1".to_owned()),
        ("HOOKSEAL_ALLOW", "127.0.0.0/8".to_owned()),
    ]
    .into_iter()
    .collect();
    // Portable flavour: the drain signs, with the secrets it opens.
    if let Some(key) = sealing_key() {
        vars.insert("SEALING_KEY", key);
    }
    let (app, router) = app(vars).await;

    let body = br#"{"id":"gh_delivery_1","type":"push","ref":"refs/heads/main"}"#;
    for _ in 0..2 {
        // The provider retries: the second delivery is recognised by its id.
        let (status, answer) = call(
            &app,
            &router,
            event("POST", "/webhook", "", &github(body), body),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer,
            json!({"ok": true, "id": "gh_delivery_1", "stored": true})
        );
    }
    let counts = admin
        .query_one(
            "SELECT (SELECT count(*) FROM hookseal.events), (SELECT count(*) FROM hookseal.outbox),
                    (SELECT type FROM hookseal.events), (SELECT data::text FROM hookseal.events)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((counts.get::<_, i64>(0), counts.get::<_, i64>(1)), (1, 1));
    assert_eq!(counts.get::<_, String>(2), "push");
    let stored: Value = serde_json::from_str(&counts.get::<_, String>(3)).unwrap();
    assert_eq!(stored, serde_json::from_slice::<Value>(body).unwrap());

    // A bad signature stores nothing.
    let (status, _) = call(
        &app,
        &router,
        event("POST", "/webhook", "", &github(b"{}"), body),
    )
    .await;
    assert_eq!(status, 401);

    // POST /dispatch drains the outbox to the endpoint.
    let auth = vec![("authorization".to_owned(), "Bearer tok-1".to_owned())];
    let (status, answer) = call(&app, &router, event("POST", "/dispatch", "", &auth, b"")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["delivered"], 1, "{answer}");
    let got = seen.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let v = Verifier::new(
        Scheme::preset("native").unwrap(),
        &[Secret::new(endpoint_secret).unwrap()],
    )
    .unwrap();
    v.verify(&got[0].1, &got[0].0, got[0].2).unwrap();
    let delivered: Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(
        delivered["id"], "gh_delivery_1",
        "the provider's id is the event id"
    );
    assert_eq!(delivered["data"]["ref"], "refs/heads/main");

    // A scheduled invocation finds nothing left.
    let out = handle(
        &app,
        &router,
        LambdaEvent::new(json!({"hookseal": "dispatch"}), Context::default()),
    )
    .await
    .unwrap();
    assert_eq!(out["delivered"], 0, "{out}");
    drop(admin);
    root.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn a_database_outage_makes_the_provider_retry() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let vars: HashMap<&'static str, String> = [
        ("INBOUND_SCHEME", "github".to_owned()),
        ("INBOUND_SECRET", GH_SECRET.to_owned()),
        (
            "DATABASE_URL",
            format!("postgres://nobody:pw-not-logged@{closed}/db"),
        ),
        ("HOOKSEAL_APP", "app_x".to_owned()),
    ]
    .into_iter()
    .collect();
    let (app, router) = app(vars).await;
    let body = br#"{"id":"gh_2"}"#;
    let (status, answer) = call(
        &app,
        &router,
        event("POST", "/webhook", "", &github(body), body),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "store_failed");
    assert!(!answer.to_string().contains("pw-not-logged"));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn a_database_without_the_extension_is_refused_at_start() {
    let name = format!("t_lambda_noext_{}", std::process::id());
    drop(hookseal_testdb::fresh(&name, "").await);
    let root = sql("postgres").await;
    let vars = |db: &str| -> HashMap<&'static str, String> {
        [
            ("INBOUND_SCHEME", "github".to_owned()),
            ("INBOUND_SECRET", GH_SECRET.to_owned()),
            ("DATABASE_URL", format!("postgres://postgres@{}/{db}", pg())),
            ("HOOKSEAL_APP", "app_x".to_owned()),
        ]
        .into_iter()
        .collect()
    };
    let (app_, _) = app(vars(&name)).await;
    let err = app_.check_database().await.unwrap_err();
    assert!(err.is_fatal());
    assert!(
        err.to_string().contains("CREATE EXTENSION hookseal"),
        "{err}"
    );
    if portable() {
        portable_versions(&name, &app_, vars(&name)).await;
    } else {
        native_versions(&name, &app_).await;
    }
    // An unreachable database is not a reason to refuse to start.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut v = vars("db");
    v.insert("DATABASE_URL", format!("postgres://nobody@{closed}/db"));
    let (unreachable, _) = app(v).await;
    unreachable.check_database().await.unwrap();
    drop(app_);
    root.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn two_routes_store_the_same_provider_id_into_their_own_apps() {
    // Each route names its app (HOOKSEAL_ROUTES' `app`), and message ids are
    // unique per app (0.3.0): two providers' equal ids are two events.
    let name = format!("t_lambda_apps_{}", std::process::id());
    let admin = hookseal_testdb::from_template(&name).await;
    let root = sql("postgres").await;
    let mut apps = Vec::new();
    for label in ["provider_a", "provider_b"] {
        let id: String = admin
            .query_one("SELECT hookseal.create_app($1)", &[&label])
            .await
            .unwrap()
            .get(0);
        apps.push(id);
    }
    let routes = json!([
        {"path": "/a", "scheme": "github", "secret_env": "GH", "app": apps[0]},
        {"path": "/b", "scheme": "github", "secret_env": "GH", "app": apps[1]},
    ])
    .to_string();
    let vars: HashMap<&'static str, String> = [
        ("HOOKSEAL_ROUTES", routes),
        ("GH", GH_SECRET.to_owned()),
        (
            "DATABASE_URL",
            format!("postgres://hookseal_test_lambda@{}/{name}", pg()),
        ),
    ]
    .into_iter()
    .collect();
    let (app, router) = app(vars).await;
    let body = br#"{"id":"shared_1","type":"push"}"#;
    for path in ["/a", "/b"] {
        let (status, answer) =
            call(&app, &router, event("POST", path, "", &github(body), body)).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(answer["stored"], true, "{answer}");
    }
    let rows = admin
        .query(
            "SELECT app_id FROM hookseal.events WHERE id = 'shared_1' ORDER BY app_id",
            &[],
        )
        .await
        .unwrap();
    let mut stored: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    stored.sort();
    apps.sort();
    assert_eq!(stored, apps, "one event per app");
    drop(admin);
    root.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// The released 0.1.0: another version, named, with the fix; updated, accepted.
async fn native_versions(name: &str, app_: &App) {
    // The released 0.1.0: another version, named, with the fix.
    sql(name)
        .await
        .batch_execute("CREATE EXTENSION hookseal VERSION '0.1.0'")
        .await
        .unwrap();
    let err = app_.check_database().await.unwrap_err();
    assert!(err.is_fatal());
    let text = err.to_string();
    assert!(
        text.contains("version 0.1.0") && text.contains("ALTER EXTENSION hookseal UPDATE"),
        "{text}"
    );
    // Updated: accepted.
    sql(name)
        .await
        .batch_execute("ALTER EXTENSION hookseal UPDATE")
        .await
        .unwrap();
    app_.check_database().await.unwrap();
}

/// The portable flavour: installed, refused without a sealing key (by
/// name), at another version refused with `hookseal install` as the fix,
/// accepted with the key.
async fn portable_versions(name: &str, keyless: &App, mut vars: HashMap<&'static str, String>) {
    let mut c = sql(name).await;
    hookseal_postgres::install::install(&mut c).await.unwrap();
    let err = keyless.check_database().await.unwrap_err();
    assert!(err.is_fatal());
    assert!(err.to_string().contains("SEALING_KEY"), "{err}");
    vars.insert("SEALING_KEY", sealing_key().expect("a sealing key"));
    let (keyed, _) = app(vars).await;
    keyed.check_database().await.unwrap();
    c.batch_execute("UPDATE hookseal.schema_versions SET version = '0.2.0'")
        .await
        .unwrap();
    let text = keyed.check_database().await.unwrap_err().to_string();
    assert!(
        text.contains("version 0.2.0") && text.contains("hookseal install"),
        "{text}"
    );
}

/// Issue 24: a stored message continues the provider's trace: the event
/// keeps the trace context of the Lambda's store span (same trace id as the
/// incoming `traceparent`, its own span id), so its deliveries join the
/// trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn a_stored_message_keeps_the_incoming_trace() {
    let _telemetry = hookseal_otel::Telemetry::init("hookseal-lambda-test").unwrap();
    let name = format!("t_lambda_trace_{}", std::process::id());
    let admin = hookseal_testdb::from_template(&name).await;
    let app_id: String = admin
        .query_one("SELECT hookseal.create_app('traced')", &[])
        .await
        .unwrap()
        .get(0);
    let vars: HashMap<&'static str, String> = [
        ("INBOUND_SCHEME", "github".to_owned()),
        ("INBOUND_SECRET", GH_SECRET.to_owned()),
        (
            "DATABASE_URL",
            format!("postgres://hookseal_test_lambda@{}/{name}", pg()),
        ),
        ("HOOKSEAL_APP", app_id.clone()),
    ]
    .into_iter()
    .collect();
    let (app, router) = app(vars).await;
    let body = br#"{"id":"gh_traced","type":"push"}"#;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut headers = github(body);
    headers.push(("traceparent".into(), incoming.into()));
    let (status, answer) = call(&app, &router, event("POST", "/webhook", "", &headers, body)).await;
    assert_eq!(status, 200, "{answer}");
    let kept: String = admin
        .query_one("SELECT traceparent FROM hookseal.events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(&kept[..36], &incoming[..36], "the same trace: {kept}");
    assert_ne!(
        &kept[36..52],
        &incoming[36..52],
        "under the store span: {kept}"
    );
    // Without a traceparent the Lambda's request span starts the trace.
    let body = br#"{"id":"gh_untraced","type":"push"}"#;
    let (status, _) = call(
        &app,
        &router,
        event("POST", "/webhook", "", &github(body), body),
    )
    .await;
    assert_eq!(status, 200);
    let untraced: Option<String> = admin
        .query_one(
            "SELECT traceparent FROM hookseal.events WHERE id = 'gh_untraced'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let untraced = untraced.expect("a trace started at the Lambda");
    assert_ne!(&untraced[3..35], &incoming[3..35], "{untraced}");
}
