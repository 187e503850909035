//! The endpoint-owner portal against a real PostgreSQL (a database cloned
//! from `hookseal_template`, either flavour) and a real HTTP client on
//! 127.0.0.1, each case one that must fail: an expired or unknown link,
//! app A's session on app B's ids through every route, every POST without
//! its CSRF field, a URL the address policy refuses, the console's session
//! on the owner pages and back; then what an owner does (add, edit,
//! disable, enable, rotate, test event, replay one, delete) with the
//! secret on no page after the one that shows it. Run by
//! scripts/dispatch-test.sh with `--ignored` and HOOKSEAL_TEST_PG.

use std::time::Duration;

use hookseal::TokenKey;

mod common;
use common::{database, drop_database, portal_framed};
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE, X_FRAME_OPTIONS};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use tokio_postgres::Client;

const ORIGIN: &str = "https://saas.example.com";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// An app with one endpoint and one queued delivery: (app, endpoint, outbox id).
async fn app_with_endpoint(admin: &Client, name: &str, url: &str) -> (String, String, i64) {
    let app: String = admin
        .query_one("SELECT hookseal.create_app($1)", &[&name])
        .await
        .unwrap()
        .get(0);
    let ep: String = admin
        .query_one(
            "SELECT endpoint_id FROM hookseal.create_endpoint($1, $2)",
            &[&app, &url],
        )
        .await
        .unwrap()
        .get(0);
    admin
        .execute(
            "SELECT hookseal.webhook_send($1, 'order.created', '{\"n\": 1}')",
            &[&app],
        )
        .await
        .unwrap();
    let outbox: i64 = admin
        .query_one(
            "SELECT id FROM hookseal.outbox WHERE endpoint_id = $1",
            &[&ep],
        )
        .await
        .unwrap()
        .get(0);
    (app, ep, outbox)
}

/// Everything of an app an owner could change, as one text.
async fn fingerprint(admin: &Client, app: &str) -> String {
    admin
        .query_one(
            "SELECT concat_ws(' | ',
                (SELECT string_agg(concat_ws(',', id, url, enabled, disabled_reason,
                                             event_types::text), ';' ORDER BY id)
                   FROM hookseal.endpoints WHERE app_id = $1),
                (SELECT string_agg(concat_ws(',', s.id, s.expires_at, s.revoked_at), ';' ORDER BY s.id)
                   FROM hookseal.secrets s JOIN hookseal.endpoints e ON e.id = s.webhook_id
                  WHERE e.app_id = $1),
                (SELECT string_agg(concat_ws(',', id, status, attempts), ';' ORDER BY id)
                   FROM hookseal.outbox WHERE app_id = $1),
                (SELECT count(*) FROM hookseal.events WHERE app_id = $1))",
            &[&app],
        )
        .await
        .unwrap()
        .get(0)
}

async fn link(admin: &Client, app: &str, ttl: &str) -> String {
    admin
        .query_one(
            "SELECT hookseal.portal_link($1, $2::text::interval)",
            &[&app, &ttl],
        )
        .await
        .unwrap()
        .get(0)
}

/// Opens a link: the owner cookie (`name=value`) and the Set-Cookie line.
async fn open(http: &reqwest::Client, base: &str, path: &str) -> (String, String) {
    let r = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
    assert_eq!(r.headers()[LOCATION], "/o/");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    (set.split(';').next().unwrap().to_owned(), set)
}

/// The CSRF field of the page at `path`.
async fn csrf_of(http: &reqwest::Client, base: &str, path: &str, cookie: &str) -> String {
    let page = get(http, base, path, cookie).await;
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with its CSRF field")
        + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

async fn get(http: &reqwest::Client, base: &str, path: &str, cookie: &str) -> String {
    let r = http
        .get(format!("{base}{path}"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let r = http
        .post(format!("{base}{path}"))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn an_owner_link_opens_one_app_and_nothing_of_another() {
    let (db, admin) = database("owner_scope").await;
    let (a, a_ep, a_outbox) =
        app_with_endpoint(&admin, "tenant a", "https://a.example.com/hook").await;
    let (b, b_ep, b_outbox) =
        app_with_endpoint(&admin, "tenant b", "https://b.example.com/hook").await;
    let base = format!(
        "http://{}",
        portal_framed(&db, TokenKey::generate().unwrap(), vec![ORIGIN.into()]).await
    );
    let http = client();

    // A link that expired, one never made, one altered: the same refusal,
    // no cookie.
    let expired = link(&admin, &a, "1 second").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let live = link(&admin, &a, "10 minutes").await;
    // The last character changed (to another of the alphabet).
    let last = if live.ends_with('x') { "y" } else { "x" };
    let altered = format!("{}{last}", &live[..live.len() - 1]);
    for path in [expired.as_str(), "/o/open/hspl_nope", altered.as_str()] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(r.headers().get(SET_COOKIE).is_none(), "{path}");
    }
    // No session: every page and action says so and changes nothing.
    let before_b = fingerprint(&admin, &b).await;
    for path in ["/o/", &format!("/o/endpoints/{a_ep}")] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }

    let (cookie, set) = open(&http, &base, &live).await;
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Partitioned",
        "Path=/o/",
    ] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    // The link keeps working until it expires (an iframe reload).
    open(&http, &base, &live).await;
    // `hookseal portal-link` makes the same kind of link; a TTL out of
    // range is refused by the database, named.
    let cli = |ttl: &str| {
        std::process::Command::new(common::procs::bin())
            .args([
                "portal-link",
                "--app",
                &a,
                "--ttl",
                ttl,
                "--base-url",
                &format!("{base}/"),
            ])
            .env(
                "DATABASE_URL",
                format!("postgres://hookseal_test_admin@{}/{db}", common::pg()),
            )
            .output()
            .unwrap()
    };
    let made = cli("60");
    assert!(made.status.success(), "{made:?}");
    let url = String::from_utf8(made.stdout).unwrap();
    let path = url
        .trim()
        .strip_prefix(&base)
        .expect("the base URL, once")
        .to_owned();
    assert!(path.starts_with("/o/open/hspl_"), "{path}");
    open(&http, &base, &path).await;
    let refused = cli("0");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("ttl must be from 1 second to 7 days"),
        "{said}"
    );
    let home = get(&http, &base, "/o/", &cookie).await;
    assert!(home.contains("a.example.com") && !home.contains("b.example.com"));
    let csrf = csrf_of(&http, &base, "/o/", &cookie).await;
    let csrf = csrf.as_str();

    // App A's session on app B's ids: every route, with a good CSRF field.
    let r = http
        .get(format!("{base}/o/endpoints/{b_ep}"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http
        .get(format!("{base}/o/deliveries/{b_outbox}"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A URL the policy passes, so the scope is what refuses.
    let url = ("url", "http://127.0.0.1:9/evil");
    let actions: [(&str, Vec<(&str, &str)>); 8] = [
        ("edit", vec![("csrf", csrf), url]),
        ("disable", vec![("csrf", csrf)]),
        ("enable", vec![("csrf", csrf)]),
        ("rotate", vec![("csrf", csrf), ("grace", "0")]),
        ("test", vec![("csrf", csrf)]),
        ("delete", vec![("csrf", csrf), ("confirm", "yes")]),
        ("replay", vec![("csrf", csrf)]),
        ("create", vec![("csrf", csrf), url]),
    ];
    for (what, form) in &actions {
        let path = match *what {
            "replay" => format!("/o/deliveries/{b_outbox}/replay"),
            "create" => continue,
            w => format!("/o/endpoints/{b_ep}/{w}"),
        };
        let (status, page) = post(&http, &base, &path, &cookie, form).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {page}");
    }
    assert_eq!(fingerprint(&admin, &b).await, before_b, "app B unchanged");

    // Every POST without its CSRF field, or with another session's, on
    // A's own ids: 403, nothing changed.
    let before_a = fingerprint(&admin, &a).await;
    let (other, _) = open(&http, &base, &link(&admin, &a, "1 minute").await).await;
    let other_csrf = csrf_of(&http, &base, "/o/", &other).await;
    for (what, form) in &actions {
        let path = match *what {
            "replay" => format!("/o/deliveries/{a_outbox}/replay"),
            "create" => "/o/endpoints".to_owned(),
            w => format!("/o/endpoints/{a_ep}/{w}"),
        };
        let without: Vec<(&str, &str)> =
            form.iter().filter(|(k, _)| *k != "csrf").copied().collect();
        let (status, _) = post(&http, &base, &path, &cookie, &without).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} without CSRF");
        let mut foreign = without.clone();
        foreign.push(("csrf", other_csrf.as_str()));
        let (status, _) = post(&http, &base, &path, &cookie, &foreign).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{path} with another session's CSRF"
        );
    }
    assert_eq!(fingerprint(&admin, &a).await, before_a, "app A unchanged");

    // The owner's session is no operator's, and the other way round.
    let r = http
        .get(format!("{base}/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/login");

    // Framing: the owner pages by the configured origin only, the console never.
    let r = http
        .get(format!("{base}/o/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains(&format!("frame-ancestors {ORIGIN};")), "{csp}");
    assert!(r.headers().get(X_FRAME_OPTIONS).is_none());
    let timing = r.headers()["server-timing"].to_str().unwrap();
    assert!(
        timing.starts_with("db;dur=") && timing.contains(", total;dur="),
        "{timing}"
    );
    let r = http.get(format!("{base}/login")).send().await.unwrap();
    let csp = r.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.headers()[X_FRAME_OPTIONS], "DENY");

    // Revoked links stop opening.
    let n: i32 = admin
        .query_one("SELECT hookseal.revoke_portal_links($1)", &[&a])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 2, "{n}");
    let r = http.get(format!("{base}{live}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    drop(admin);
    drop_database(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn an_owner_manages_endpoints_and_sees_each_secret_once() {
    let (db, admin) = database("owner_manage").await;
    let (app, first, _) =
        app_with_endpoint(&admin, "shop", "https://orders.example.com/hook").await;
    let base = format!(
        "http://{}",
        portal_framed(&db, TokenKey::generate().unwrap(), vec![]).await
    );
    let http = client();
    let (cookie, _) = open(&http, &base, &link(&admin, &app, "10 minutes").await).await;
    let csrf = csrf_of(&http, &base, "/o/", &cookie).await;
    let csrf = csrf.as_str();

    // The address policy, with its reason; nothing stored.
    let before = fingerprint(&admin, &app).await;
    for (url, why) in [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("ftp://example.com/x", "unsupported URL scheme"),
    ] {
        let (status, page) = post(
            &http,
            &base,
            "/o/endpoints",
            &cookie,
            &[("csrf", csrf), ("url", url)],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert!(page.contains(why), "{url}: {page}");
    }
    // A URL the database refuses (a space), named.
    let (status, page) = post(
        &http,
        &base,
        "/o/endpoints",
        &cookie,
        &[("csrf", csrf), ("url", "http://127.0.0.1:9/a b")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert_eq!(fingerprint(&admin, &app).await, before);

    // Added: the secret on this page only; the URL, a script payload, as text.
    let xss = "http://127.0.0.1:9/h?q=\"><script>alert(1)</script>";
    let (status, page) = post(
        &http,
        &base,
        "/o/endpoints",
        &cookie,
        &[
            ("csrf", csrf),
            ("url", xss),
            ("event_types", "invoice.paid, invoice.voided"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let at = page.find("class=\"secret\">").unwrap() + 15;
    let secret = page[at..].split('<').next().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let ep: String = admin
        .query_one(
            "SELECT id FROM hookseal.endpoints WHERE app_id = $1 AND id <> $2",
            &[&app, &first],
        )
        .await
        .unwrap()
        .get(0);
    let types: Vec<String> = admin
        .query_one(
            "SELECT event_types FROM hookseal.endpoints WHERE id = $1",
            &[&ep],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(types, ["invoice.paid", "invoice.voided"]);
    let ep_path = format!("/o/endpoints/{ep}");
    let page = get(&http, &base, &ep_path, &cookie).await;
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.contains("<script>alert")
    );

    // A test event: through the outbox, to this endpoint alone (its types
    // leave hookseal.test out; the first endpoint takes every type).
    let (status, _) = post(
        &http,
        &base,
        &format!("{ep_path}/test"),
        &cookie,
        &[("csrf", csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let rows: Vec<String> = admin
        .query(
            "SELECT o.endpoint_id FROM hookseal.outbox o JOIN hookseal.events v
                 ON v.id = o.event_id AND v.app_id = o.app_id
              WHERE v.type = 'hookseal.test' AND v.app_id = $1",
            &[&app],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, std::slice::from_ref(&ep));

    // Edit (the policy again), disable, enable.
    let (status, page) = post(
        &http,
        &base,
        &format!("{ep_path}/edit"),
        &cookie,
        &[("csrf", csrf), ("url", "http://192.168.0.10/x")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("private"), "{page}");
    let (status, _) = post(
        &http,
        &base,
        &format!("{ep_path}/edit"),
        &cookie,
        &[
            ("csrf", csrf),
            ("url", "http://127.0.0.1:9/new"),
            ("event_types", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let row = admin
        .query_one(
            "SELECT url, event_types IS NULL FROM hookseal.endpoints WHERE id = $1",
            &[&ep],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, bool>(1)),
        ("http://127.0.0.1:9/new".into(), true)
    );
    post(
        &http,
        &base,
        &format!("{ep_path}/disable"),
        &cookie,
        &[("csrf", csrf)],
    )
    .await;
    let row = admin
        .query_one(
            "SELECT enabled, disabled_reason FROM hookseal.endpoints WHERE id = $1",
            &[&ep],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), "disabled by its owner");
    let (status, _) = post(
        &http,
        &base,
        &format!("{ep_path}/test"),
        &cookie,
        &[("csrf", csrf)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no test event to a disabled endpoint"
    );
    post(
        &http,
        &base,
        &format!("{ep_path}/enable"),
        &cookie,
        &[("csrf", csrf)],
    )
    .await;
    let on: bool = admin
        .query_one(
            "SELECT enabled FROM hookseal.endpoints WHERE id = $1",
            &[&ep],
        )
        .await
        .unwrap()
        .get(0);
    assert!(on);

    // Rotate: the new secret shown once, neither on any page after.
    let (status, page) = post(
        &http,
        &base,
        &format!("{ep_path}/rotate"),
        &cookie,
        &[("csrf", csrf), ("grace", "1 hour")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let at = page.find("class=\"secret\">").unwrap() + 15;
    let rotated = page[at..].split('<').next().unwrap().to_owned();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    let bad_grace = post(
        &http,
        &base,
        &format!("{ep_path}/rotate"),
        &cookie,
        &[("csrf", csrf), ("grace", "soon")],
    )
    .await;
    assert_eq!(bad_grace.0, StatusCode::UNPROCESSABLE_ENTITY);

    // Replay one delivery, delivered through the dispatcher's own calls.
    let first_row: i64 = admin
        .query_one(
            "SELECT id FROM hookseal.outbox WHERE endpoint_id = $1",
            &[&first],
        )
        .await
        .unwrap()
        .get(0);
    admin
        .execute(
            "WITH c AS (SELECT array_agg(outbox_id) AS ids FROM hookseal.claim('t', 10))
             SELECT hookseal.ack_many('t', ids, array_fill(200, ARRAY[cardinality(ids)])) FROM c",
            &[],
        )
        .await
        .unwrap();
    let page = get(&http, &base, &format!("/o/deliveries/{first_row}"), &cookie).await;
    assert!(
        page.contains("delivered") && page.contains("Send it again"),
        "{page}"
    );
    let (status, _) = post(
        &http,
        &base,
        &format!("/o/deliveries/{first_row}/replay"),
        &cookie,
        &[("csrf", csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let status: String = admin
        .query_one(
            "SELECT status::text FROM hookseal.outbox WHERE id = $1",
            &[&first_row],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "pending");

    // Filter by event type.
    let page = get(&http, &base, "/o/?type=hookseal.test", &cookie).await;
    assert!(page.contains("hookseal.test") && !page.contains("order.created"));
    let page = get(&http, &base, "/o/?type=order.created", &cookie).await;
    assert!(!page.contains("hookseal.test") && page.contains("order.created"));

    // Every page after the ones that showed them: neither secret.
    let delivery: i64 = admin
        .query_one(
            "SELECT max(id) FROM hookseal.outbox WHERE app_id = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    for path in [
        "/o/".to_owned(),
        ep_path.clone(),
        format!("/o/deliveries/{delivery}"),
    ] {
        let page = get(&http, &base, &path, &cookie).await;
        assert!(
            !page.contains(&secret) && !page.contains(&rotated),
            "{path}"
        );
        assert!(!page.contains(&secret["whsec_".len()..]), "{path}");
    }

    // Delete: only when confirmed.
    let (status, _) = post(
        &http,
        &base,
        &format!("{ep_path}/delete"),
        &cookie,
        &[("csrf", csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = post(
        &http,
        &base,
        &format!("{ep_path}/delete"),
        &cookie,
        &[("csrf", csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let left: i64 = admin
        .query_one(
            "SELECT (SELECT count(*) FROM hookseal.endpoints WHERE id = $1)
                  + (SELECT count(*) FROM hookseal.outbox WHERE endpoint_id = $1)
                  + (SELECT count(*) FROM hookseal.attempts WHERE endpoint_id = $1)",
            &[&ep],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    drop(admin);
    drop_database(&db).await;
}
