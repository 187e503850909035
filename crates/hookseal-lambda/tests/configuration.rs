//! Configuration rules from issue 20, through `Loader` and the router:
//! a secret value is one secret (whitespace included) and rotation uses
//! numbered variables or arrays of names; a secret shorter than the floor
//! is refused at start; verified messages must go somewhere unless
//! verify-only is asked for; in store mode each route stores into its own
//! app.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use hookseal::{Message, Scheme, Secret, Signer};
use hookseal_lambda::{App, ConfigError, Loader, Settings};
use serde_json::json;

mod common;
use common::{call, event, receiver};

/// GitHub's documented example ("Validating webhook deliveries").
const GH_SECRET: &str = "It's a Secret to Everybody";
const GH_BODY: &[u8] = b"Hello, World!";
const GH_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const RELAY_SECRET: &str = "pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg";
const OLD_SECRET: &str = "old-rotation-secret-0001";
const NEW_SECRET: &str = "new-rotation-secret-0002";

async fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |k: &str| map.get(k).cloned();
    Loader::new(&env).load().await
}

async fn app_with(vars: &[(&str, &str)]) -> (Arc<App>, Router) {
    let settings = match load(vars).await {
        Ok(s) => s,
        Err(e) => panic!("{vars:?} did not load: {e}"),
    };
    let app = App::new(settings).unwrap();
    let router = app.router();
    (app, router)
}

async fn refused(vars: &[(&str, &str)]) -> String {
    match load(vars).await {
        Ok(_) => panic!("{vars:?} loaded"),
        Err(e) => e.to_string(),
    }
}

fn github_headers(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    Signer::new(
        Scheme::preset("github").unwrap(),
        &[Secret::new(secret).unwrap()],
    )
    .unwrap()
    .sign(&Message::new(body))
    .unwrap()
    .headers
}

fn documented_headers() -> Vec<(String, String)> {
    vec![("X-Hub-Signature-256".to_owned(), GH_SIGNATURE.to_owned())]
}

// ---------------------------------------------------- 1. secrets are not split

#[tokio::test]
async fn githubs_documented_vector_is_accepted_and_relayed() {
    let (url, seen) = receiver(200).await;
    let (app, router) = app_with(&[
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET", GH_SECRET),
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", RELAY_SECRET),
    ])
    .await;
    let (status, answer) = call(
        &app,
        &router,
        event("POST", "/webhook", "", &documented_headers(), GH_BODY),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["relayed"], 200, "{answer}");
    let got = seen.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].1[..], GH_BODY);
}

#[tokio::test]
async fn a_word_of_the_secret_is_not_a_key() {
    let (url, seen) = receiver(200).await;
    let (app, router) = app_with(&[
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET", GH_SECRET),
        ("WEBHOOK_URL", &url),
        ("WEBHOOK_SECRET", RELAY_SECRET),
    ])
    .await;
    for word in ["a", "It's", "Everybody"] {
        let headers = github_headers(word, GH_BODY);
        let (status, answer) = call(
            &app,
            &router,
            event("POST", "/webhook", "", &headers, GH_BODY),
        )
        .await;
        assert_eq!(status, 401, "signed with `{word}`: {answer}");
        assert_eq!(answer["error"], "no_matching_signature", "{answer}");
    }
    assert!(seen.0.lock().unwrap().is_empty(), "nothing was relayed");
}

#[tokio::test]
async fn routes_secret_env_id_and_parameter_are_not_split() {
    let routes = json!([{"path": "/gh", "scheme": "github", "secret_env": "GH"}]).to_string();
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("GH", GH_SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    let (status, answer) = call(
        &app,
        &router,
        event("POST", "/gh", "", &documented_headers(), GH_BODY),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let headers = github_headers("a", GH_BODY);
    let (status, _) = call(&app, &router, event("POST", "/gh", "", &headers, GH_BODY)).await;
    assert_eq!(status, 401);

    // Through the Parameters and Secrets extension (secret_id, secret_parameter,
    // INBOUND_SECRET_ID) the value is one secret too.
    let port = extension(GH_SECRET).await;
    let routes = json!([
        {"path": "/by-id", "scheme": "github", "secret_id": "prod/gh"},
        {"path": "/by-parameter", "scheme": "github", "secret_parameter": "/gh"},
    ])
    .to_string();
    let (app, router) = app_with(&[
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", &port),
        ("HOOKSEAL_ROUTES", &routes),
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET_ID", "prod/gh"),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    for path in ["/by-id", "/by-parameter", "/webhook"] {
        let (status, answer) = call(
            &app,
            &router,
            event("POST", path, "", &documented_headers(), GH_BODY),
        )
        .await;
        assert_eq!(status, 200, "{path}: {answer}");
        let headers = github_headers("a", GH_BODY);
        let (status, _) = call(&app, &router, event("POST", path, "", &headers, GH_BODY)).await;
        assert_eq!(status, 401, "{path}");
    }
}

/// A Parameters and Secrets extension answering every secret and parameter
/// with `value`; returns its port.
async fn extension(value: &'static str) -> String {
    use std::convert::Infallible;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let body = match req.uri().path() {
                            "/secretsmanager/get" => json!({"SecretString": value}),
                            _ => json!({"Parameter": {"Value": value}}),
                        };
                        Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(body.to_string()),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    port.to_string()
}

#[tokio::test]
async fn rotation_by_numbered_variables_verifies_both_secrets() {
    let (app, router) = app_with(&[
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET", OLD_SECRET),
        ("INBOUND_SECRET_2", NEW_SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    for secret in [OLD_SECRET, NEW_SECRET] {
        let headers = github_headers(secret, GH_BODY);
        let (status, answer) = call(
            &app,
            &router,
            event("POST", "/webhook", "", &headers, GH_BODY),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    let headers = github_headers("another-secret-00003", GH_BODY);
    let (status, _) = call(
        &app,
        &router,
        event("POST", "/webhook", "", &headers, GH_BODY),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn rotation_in_routes_is_an_array_of_names() {
    let routes = json!([{"path": "/gh", "scheme": "github", "secret_env": ["GH_OLD", "GH_NEW"]}])
        .to_string();
    let (app, router) = app_with(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("GH_OLD", OLD_SECRET),
        ("GH_NEW", NEW_SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    for secret in [OLD_SECRET, NEW_SECRET] {
        let headers = github_headers(secret, GH_BODY);
        let (status, answer) =
            call(&app, &router, event("POST", "/gh", "", &headers, GH_BODY)).await;
        assert_eq!(status, 200, "{answer}");
    }
}

#[tokio::test]
async fn numbered_secrets_without_gaps() {
    let err = refused(&[
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET", OLD_SECRET),
        ("INBOUND_SECRET_3", NEW_SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    assert!(
        err.contains("INBOUND_SECRET_3") && err.contains("INBOUND_SECRET_2"),
        "{err}"
    );
    assert!(
        !err.contains(NEW_SECRET) && !err.contains(OLD_SECRET),
        "{err}"
    );
    // The relay signs with one secret: a second one is a mistake, not ignored.
    let err = refused(&[
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET", OLD_SECRET),
        ("WEBHOOK_URL", "http://127.0.0.1:9/hooks"),
        ("WEBHOOK_SECRET", RELAY_SECRET),
        ("WEBHOOK_SECRET_2", NEW_SECRET),
    ])
    .await;
    assert!(err.contains("WEBHOOK_SECRET_2"), "{err}");
    assert!(!err.contains(NEW_SECRET), "{err}");
}

#[tokio::test]
async fn a_too_short_secret_is_refused_at_start_by_name() {
    let routes =
        json!([{"path": "/gh", "scheme": "github", "secret_env": ["GH_OLD", "GH_X"]}]).to_string();
    // (variables, the variable named in the error, the short secret)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[("INBOUND_SCHEME", "github"), ("INBOUND_SECRET", "a")],
            "INBOUND_SECRET",
            "a",
        ),
        (
            &[
                ("INBOUND_SCHEME", "github"),
                ("INBOUND_SECRET", OLD_SECRET),
                ("INBOUND_SECRET_2", "q7Zt9"),
            ],
            "INBOUND_SECRET_2",
            "q7Zt9",
        ),
        (
            &[
                ("HOOKSEAL_ROUTES", &routes),
                ("GH_OLD", OLD_SECRET),
                ("GH_X", "Zk3vQ8pW"),
            ],
            "GH_X",
            "Zk3vQ8pW",
        ),
        (
            &[
                ("INBOUND_SCHEME", "github"),
                ("INBOUND_SECRET", OLD_SECRET),
                ("WEBHOOK_URL", "http://127.0.0.1:9/hooks"),
                ("WEBHOOK_SECRET", "R3layKey"),
            ],
            "WEBHOOK_SECRET",
            "R3layKey",
        ),
    ];
    for (vars, var, secret) in cases {
        let mut vars = vars.to_vec();
        if !vars.iter().any(|(k, _)| *k == "WEBHOOK_URL") {
            vars.push(("HOOKSEAL_MODE", "verify-only"));
        }
        let err = refused(&vars).await;
        assert!(err.starts_with(var), "{vars:?}: {err}");
        assert!(err.contains("shorter"), "{err}");
        // The message holds the variable and the rule, never the value
        // ("a" occurs in ordinary words: the other cases cover that).
        if secret.len() > 1 {
            assert!(!err.contains(secret), "{err}");
        }
    }
}

// ------------------------------------------------ 7. messages must go somewhere

#[tokio::test]
async fn without_a_destination_the_function_does_not_start() {
    let err = refused(&[("INBOUND_SCHEME", "github"), ("INBOUND_SECRET", GH_SECRET)]).await;
    assert!(
        err.contains("WEBHOOK_URL")
            && err.contains("DATABASE_URL")
            && err.contains("HOOKSEAL_MODE=verify-only"),
        "{err}"
    );
    assert!(!err.contains(GH_SECRET), "{err}");
    let err = refused(&[("HOOKSEAL_MODE", "relay-everything")]).await;
    assert!(err.contains("HOOKSEAL_MODE"), "{err}");
    // verify-only with a destination is a contradiction, not a silent choice.
    let err = refused(&[
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET", GH_SECRET),
        ("WEBHOOK_URL", "http://127.0.0.1:9/hooks"),
        ("WEBHOOK_SECRET", RELAY_SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    assert!(err.contains("HOOKSEAL_MODE"), "{err}");
}

#[tokio::test]
async fn verify_only_is_an_explicit_mode() {
    let (app, router) = app_with(&[
        ("INBOUND_SCHEME", "github"),
        ("INBOUND_SECRET", GH_SECRET),
        ("HOOKSEAL_MODE", "verify-only"),
    ])
    .await;
    let (status, answer) = call(
        &app,
        &router,
        event("POST", "/webhook", "", &documented_headers(), GH_BODY),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true);
    assert!(answer.get("relayed").is_none() && answer.get("stored").is_none());
}

// ------------------------------------------------------ 3. one app per route

fn two_routes(first_app: Option<&str>, second_app: Option<&str>) -> String {
    let route = |path: &str, scheme: &str, app: Option<&str>| {
        let mut r = json!({"path": path, "scheme": scheme, "secret_env": "S"});
        if let Some(a) = app {
            r["app"] = a.into();
        }
        r
    };
    json!([
        route("/github", "github", first_app),
        route("/stripe", "stripe", second_app),
    ])
    .to_string()
}

const DB: &str = "postgres://u:db-password-1@127.0.0.1:9/db";

#[tokio::test]
async fn two_routes_storing_into_one_app_are_refused() {
    for (routes, app) in [
        (two_routes(None, None), Some("app_shared")),
        (two_routes(Some("app_a"), Some("app_a")), None),
        (two_routes(Some("app_shared"), None), Some("app_shared")),
    ] {
        let mut vars = vec![
            ("HOOKSEAL_ROUTES", routes.as_str()),
            ("S", OLD_SECRET),
            ("DATABASE_URL", DB),
        ];
        if let Some(a) = app {
            vars.push(("HOOKSEAL_APP", a));
        }
        let err = refused(&vars).await;
        assert!(
            err.contains("/github") && err.contains("/stripe") && err.contains("own `app`"),
            "{vars:?}: {err}"
        );
        assert!(!err.contains("db-password-1") && !err.contains(OLD_SECRET));
    }
}

#[tokio::test]
async fn each_route_may_name_its_app() {
    // Own apps; HOOKSEAL_APP is then not needed.
    let routes = two_routes(Some("app_github"), Some("app_stripe"));
    load(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", OLD_SECRET),
        ("DATABASE_URL", DB),
    ])
    .await
    .unwrap();
    // One route with its own app, the other on HOOKSEAL_APP.
    let routes = two_routes(Some("app_github"), None);
    let settings = load(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", OLD_SECRET),
        ("DATABASE_URL", DB),
        ("HOOKSEAL_APP", "app_default"),
    ])
    .await
    .unwrap();
    let apps: Vec<_> = settings
        .routes
        .iter()
        .map(|r| (r.path.as_str(), r.app.as_deref()))
        .collect();
    assert_eq!(
        apps,
        [
            ("/github", Some("app_github")),
            ("/stripe", Some("app_default"))
        ]
    );
    // A route without an app and no HOOKSEAL_APP.
    let err = refused(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", OLD_SECRET),
        ("DATABASE_URL", DB),
    ])
    .await;
    assert!(err.contains("HOOKSEAL_APP"), "{err}");
    // `app` without a database stores nothing: refused, not ignored.
    let err = refused(&[
        ("HOOKSEAL_ROUTES", &routes),
        ("S", OLD_SECRET),
        ("WEBHOOK_URL", "http://127.0.0.1:9/hooks"),
        ("WEBHOOK_SECRET", RELAY_SECRET),
    ])
    .await;
    assert!(
        err.contains("HOOKSEAL_ROUTES[0]") && err.contains("DATABASE_URL"),
        "{err}"
    );
}
