//! The console and the owner portal in a real browser: Debian's chromium,
//! headless, driven through chromedriver (WebDriver) by fantoccini, against
//! a real PostgreSQL (either flavour), a real `hookseal dispatch` and
//! `hookseal receive`, and `hookseal portal` itself (for its log).
//! - An operator signs in, finds the disabled endpoint whose URL and reason
//!   are script payloads (none runs: checked in the page), opens it, sees
//!   its chart and enables it.
//! - An operator finds an endpoint whose deliveries died, fixes its URL,
//!   enables it, redrives, and the receiver verifies every event.
//! - An owner opens a link in the iframe of the configured origin, adds an
//!   endpoint, copies the secret shown once, and the test event it sends
//!   is verified by `hookseal receive` with that secret; the attempt is on
//!   the page. Stored payloads (endpoint URL, event type, answer body) run
//!   nowhere; an origin not configured cannot frame the portal; the secret
//!   is on no later page and in no log.
//!
//! Screenshots go to HOOKSEAL_SCREENSHOTS (docs/ holds the current ones).
//! Run by scripts/dispatch-test.sh (`--ignored`, HOOKSEAL_TEST_PG,
//! chromedriver on PATH, the CLI built). One browser at a time (two cores).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hookseal::TokenKey;

mod common;
use common::procs::{self, free_port, until, verified, Proc};
use common::{database, drop_database, portal};
use tokio_postgres::Client;

/// One browser session at a time: chromium, a dispatcher and a portal
/// each are a lot for a two-core machine.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// chromedriver on a free loopback port; killed on drop.
struct Driver(#[allow(dead_code)] Proc, u16);

async fn driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("TZ", "Asia/Kolkata")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver on PATH (Debian: chromium-driver)");
    let driver = Driver(Proc(child), port);
    procs::wait_port(port).await;
    driver
}

async fn browser(d: &Driver) -> Browser {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.1))
        .await
        .expect("a chromium session")
}

/// A database with one healthy and one disabled endpoint, the disabled
/// one's URL and reason script payloads, and a day of attempts.
async fn filled(test: &str) -> (String, Client, String) {
    let (db, admin) = database(test).await;
    let app: String = admin
        .query_one("SELECT hookseal.create_app('shop')", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .execute(
            "SELECT hookseal.create_endpoint($1, 'https://orders.example.com/hooks')",
            &[&app],
        )
        .await
        .unwrap();
    let bad: String = admin
        .query_one(
            "SELECT endpoint_id FROM hookseal.create_endpoint($1, $2)",
            &[
                &app,
                &"http://127.0.0.1:9/h?q=\"><script>window.__pwned=1</script>",
            ],
        )
        .await
        .unwrap()
        .get(0);
    admin
        .execute(
            "UPDATE hookseal.endpoints SET enabled = false,
                    disabled_reason = '<img src=x onerror=\"window.__pwned=2\">410 Gone'
              WHERE id = $1",
            &[&bad],
        )
        .await
        .unwrap();
    // A day of attempts: every hour some, failures in the last few.
    admin
        .execute(
            "INSERT INTO hookseal.attempts (outbox_id, attempt, endpoint_id, worker, started_at,
                     finished_at, http_status, error_class, error)
             SELECT g, 1, $1, 'w1', now() - make_interval(mins => g * 7),
                    now() - make_interval(mins => g * 7) + interval '40 ms',
                    CASE WHEN g < 40 AND g % 3 = 0 THEN 503 ELSE 200 END,
                    CASE WHEN g < 40 AND g % 3 = 0 THEN 'http' ELSE 'ok' END,
                    CASE WHEN g < 40 AND g % 3 = 0 THEN '503 <b>Service Unavailable</b>' END
               FROM generate_series(1, 200) g",
            &[&bad],
        )
        .await
        .unwrap();
    (db, admin, bad)
}

async fn shot(b: &Browser, name: &str) {
    let Some(dir) = std::env::var_os("HOOKSEAL_SCREENSHOTS") else {
        return;
    };
    let png = b.screenshot().await.unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
}

/// Clicks what leads to another page, and waits (30 s at most) until the
/// browser has left this one (the clicked element gone stale), so that the
/// next find cannot match the page being left.
async fn click(b: &Browser, at: Locator<'_>) {
    follow(b.find(at).await.unwrap()).await;
}

async fn follow(el: fantoccini::elements::Element) {
    el.click().await.unwrap();
    let start = Instant::now();
    loop {
        match el.tag_name().await {
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                return
            }
            Err(e) => panic!("while waiting for the next page: {e}"),
            Ok(_) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the click led nowhere within 30 s"
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
}

/// Waits (30 s at most) for an element of the page a click leads to: a
/// click returns before the browser has navigated.
async fn appears(b: &Browser, at: Locator<'_>) {
    let wanted = format!("{at:?}");
    if let Err(e) = b
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(at)
        .await
    {
        let page = b.source().await.unwrap_or_default();
        panic!("{wanted}: {e}; the page: {page}");
    }
}

async fn text(b: &Browser, at: Locator<'_>) -> String {
    b.find(at).await.unwrap().text().await.unwrap()
}

async fn nothing_ran(b: &Browser) {
    let v = b
        .execute("return typeof window.__pwned", vec![])
        .await
        .unwrap();
    assert_eq!(v, "undefined", "a payload ran in the page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and chromedriver: scripts/dispatch-test.sh"]
async fn an_operator_finds_the_disabled_endpoint_and_enables_it_in_a_browser() {
    let _one = ONE_BROWSER.lock().await;
    let (db, admin, bad) = filled("browser").await;
    let key = TokenKey::generate().unwrap();
    let token = hookseal_portal::operator_token(&key, Duration::from_secs(60));
    let base = format!("http://{}", portal(&db, key).await);
    let d = driver().await;
    let b = browser(&d).await;

    b.goto(&format!("{base}/")).await.unwrap();
    assert!(b.current_url().await.unwrap().path().ends_with("/login"));
    b.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(&token)
        .await
        .unwrap();
    click(&b, Locator::Css("main button[type=submit]")).await;
    appears(&b, Locator::Css("form.find")).await; // the console's page
    assert_eq!(b.current_url().await.unwrap().path(), "/");
    let row = text(&b, Locator::XPath(&format!("//tr[td/a[text()='{bad}']]"))).await;
    // The payloads are text on the page, and nothing of them ran.
    assert!(
        row.contains("disabled") && row.contains("<img src=x"),
        "{row}"
    );
    assert!(row.contains("<script>window.__pwned=1</script>"), "{row}");
    nothing_ran(&b).await;
    shot(&b, "portal-console.png").await;

    click(&b, Locator::LinkText(&bad)).await;
    appears(&b, Locator::Css("svg.chart")).await;
    let chart = b
        .find(Locator::Css("svg.chart"))
        .await
        .unwrap()
        .attr("aria-label")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        chart.contains("failed") && !chart.contains(": 0 attempts"),
        "{chart}"
    );
    let error_cell = text(&b, Locator::Css("main table tbody")).await;
    assert!(
        error_cell.contains("503 <b>Service Unavailable</b>"),
        "escaped, shown as text"
    );
    nothing_ran(&b).await;
    // The one script ran: times in the viewer's zone (chromium here runs
    // in TZ=Asia/Kolkata, +05:30), the UTC text kept as the title.
    let first = b.find(Locator::Css("main table tbody time")).await.unwrap();
    let utc = first.attr("title").await.unwrap().unwrap_or_default();
    let start = Instant::now();
    let mut shown = first.text().await.unwrap();
    while shown == utc && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        shown = first.text().await.unwrap();
    }
    assert!(
        utc.ends_with(" UTC") && !shown.ends_with(" UTC"),
        "{shown} / {utc}"
    );
    assert!(
        shown.contains("GMT+5:30") || shown.contains("IST"),
        "{shown}"
    );
    shot(&b, "portal-endpoint.png").await;

    click(
        &b,
        Locator::XPath("//button[starts-with(text(), 'Enable')]"),
    )
    .await;
    // The same page again, now without the button.
    appears(
        &b,
        Locator::XPath("//dd/span[@class='ok' and text()='enabled']"),
    )
    .await;
    let state = text(&b, Locator::Css("dl")).await;
    assert!(state.contains("enabled"), "{state}");
    let enabled: bool = admin
        .query_one(
            "SELECT enabled FROM hookseal.endpoints WHERE id = $1",
            &[&bad],
        )
        .await
        .unwrap()
        .get(0);
    assert!(enabled);
    b.close().await.unwrap();
    drop(admin);
    drop_database(&db).await;
}

/// Types `value` into the empty (cleared) input at `at`.
async fn fill(b: &Browser, at: Locator<'_>, value: &str) {
    let input = b.find(at).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

/// Neither the whole secret nor its key part (without `whsec_`) in `text`.
fn holds_secret(text: &str, secret: &str) -> bool {
    text.contains(secret) || text.contains(secret.trim_start_matches("whsec_"))
}

/// The receiver's secret in a file of `dir`, for `hookseal receive`.
fn secret_file(dir: &std::path::Path, secret: &str) -> std::path::PathBuf {
    let f = dir.join("secret");
    std::fs::write(&f, format!("{secret}\n")).unwrap();
    f
}

async fn count(admin: &Client, sql: &str, ep: &str) -> i64 {
    admin.query_one(sql, &[&ep]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL, chromedriver and the CLI: scripts/dispatch-test.sh"]
async fn an_operator_fixes_a_failing_endpoint_and_its_events_arrive() {
    let _one = ONE_BROWSER.lock().await;
    let (db, admin) = database("fix").await;
    let dir = tempdir("fix");
    let app: String = admin
        .query_one("SELECT hookseal.create_app('shop')", &[])
        .await
        .unwrap()
        .get(0);
    // A private address the dispatchers refuse: each delivery dies at once.
    let row = admin
        .query_one(
            "SELECT endpoint_id, secret FROM hookseal.create_endpoint($1, 'http://10.255.255.1/hook')",
            &[&app],
        )
        .await
        .unwrap();
    let (ep, secret): (String, String) = (row.get(0), row.get(1));
    let mut sent = Vec::new();
    for n in 0..5 {
        let id: String = admin
            .query_one(
                "SELECT hookseal.webhook_send($1, 'order.paid', jsonb_build_object('n', $2::int))",
                &[&app, &n],
            )
            .await
            .unwrap()
            .get(0);
        sent.push(id);
    }
    let _dispatch = procs::dispatcher(&db, &dir.join("dispatch.log"));
    let dead = "SELECT count(*) FROM hookseal.outbox WHERE endpoint_id = $1 AND status = 'dead'";
    until("5 dead letters", Duration::from_secs(60), || async {
        count(&admin, dead, &ep).await == 5
    })
    .await;
    let port = free_port();
    let lines = dir.join("received.jsonl");
    let _receive = procs::receiver(
        port,
        &secret_file(&dir, &secret),
        &lines,
        &dir.join("receive.log"),
    )
    .await;
    let portal_port = free_port();
    let _portal = procs::portal_process(&db, &dir, portal_port, &[], &dir.join("portal.log")).await;
    let base = format!("http://127.0.0.1:{portal_port}");
    let d = driver().await;
    let b = browser(&d).await;

    b.goto(&format!("{base}/login")).await.unwrap();
    fill(&b, Locator::Css("#token"), &procs::operator_token(&dir)).await;
    click(&b, Locator::Css("main button[type=submit]")).await;
    appears(&b, Locator::Css("form.find")).await;
    let line = text(&b, Locator::XPath(&format!("//tr[td/a[text()='{ep}']]"))).await;
    assert!(line.contains("10.255.255.1"), "{line}");
    click(&b, Locator::LinkText(&ep)).await;
    appears(&b, Locator::Css("form.alter")).await;
    let attempts = text(&b, Locator::Css("main table tbody")).await;
    assert!(
        attempts.contains("policy"),
        "the refusal is shown: {attempts}"
    );

    // Fix the URL, enable it if it was disabled or its circuit opened, redrive.
    let fixed = format!("http://127.0.0.1:{port}/hook");
    fill(&b, Locator::Css("form.alter input[name=url]"), &fixed).await;
    click(&b, Locator::Css("form.alter button[type=submit]")).await;
    appears(&b, Locator::XPath("//p[@class='done' and text()='Saved.']")).await;
    if let Ok(enable) = b
        .find(Locator::XPath("//button[starts-with(text(), 'Enable')]"))
        .await
    {
        follow(enable).await;
        appears(&b, Locator::Css("form.alter")).await;
    }
    click(&b, Locator::XPath("//button[text()='Redrive']")).await;
    appears(
        &b,
        Locator::XPath("//p[@class='done' and starts-with(text(), '5 dead letters')]"),
    )
    .await;
    until(
        "the 5 events verified by hookseal receive",
        Duration::from_secs(60),
        || async { verified(&lines).len() >= 5 },
    )
    .await;
    let mut got = verified(&lines);
    got.sort();
    sent.sort();
    assert_eq!(got, sent, "each event once, under its id");
    b.refresh().await.unwrap();
    appears(&b, Locator::Css("form.alter")).await;
    let state = text(&b, Locator::Css("dl")).await;
    assert!(state.contains("0 / 0"), "nothing queued or dead: {state}");
    let attempts = text(&b, Locator::Css("main table tbody")).await;
    assert!(
        attempts.contains("ok") && attempts.contains("200"),
        "{attempts}"
    );
    b.close().await.unwrap();
    drop(admin);
    drop_database(&db).await;
}

/// A scratch directory for one test's files and logs.
fn tempdir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hookseal-portal-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The operator's own site on 127.0.0.1: `/embed?src=URL` frames the URL
/// (the settings page a SaaS puts the portal in); `/payload` answers 500
/// with script payloads as its body (a receiver an attacker runs).
async fn operator_site() -> u16 {
    use axum::extract::Query;
    use axum::response::Html;
    use axum::routing::{any, get};
    #[derive(serde::Deserialize)]
    struct Src {
        src: String,
    }
    let app = axum::Router::new()
        .route(
            "/embed",
            get(|Query(q): Query<Src>| async move {
                Html(format!(
                    "<!doctype html><title>Acme · Settings</title>\
                     <h1 style=\"font:600 18px system-ui\">Acme · Settings · Webhooks</h1>\
                     <iframe id=\"portal\" src=\"{}\" style=\"width:100%;height:780px;border:1px solid #ccc\"></iframe>",
                    q.src.replace('"', "%22")
                ))
            }),
        )
        .route(
            "/payload",
            any(|| async {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "<script>window.__pwned=4</script><img src=x onerror=\"window.__pwned=5\">",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// No element a payload would have made, in the current frame's page.
async fn no_payload_element(b: &Browser) {
    let n = b
        .execute(
            "return document.querySelectorAll('main img, main script, main iframe').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(n, 0, "a payload became an element");
    nothing_ran(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL, chromedriver and the CLI: scripts/dispatch-test.sh"]
async fn an_owner_adds_an_endpoint_in_an_iframe_and_its_test_event_arrives() {
    let _one = ONE_BROWSER.lock().await;
    let (db, admin) = database("owner").await;
    let dir = tempdir("owner");
    let site = operator_site().await;
    let app: String = admin
        .query_one("SELECT hookseal.create_app('acme customer 42')", &[])
        .await
        .unwrap()
        .get(0);
    // Stored payloads: an endpoint URL (its receiver answers with more),
    // and an event type.
    let xss_url = format!("http://127.0.0.1:{site}/payload?q=\"><script>window.__pwned=1</script>");
    admin
        .execute("SELECT hookseal.create_endpoint($1, $2)", &[&app, &xss_url])
        .await
        .unwrap();
    admin
        .execute(
            "SELECT hookseal.webhook_send($1, '<img src=x onerror=\"window.__pwned=3\">', '{}')",
            &[&app],
        )
        .await
        .unwrap();
    let logs = [
        "dispatch.log",
        "portal.log",
        "receive.log",
        "received.jsonl",
    ]
    .map(|f| dir.join(f));
    let _dispatch = procs::dispatcher(&db, &logs[0]);
    let answered = "SELECT count(*) FROM hookseal.attempts a JOIN hookseal.endpoints e
                      ON e.id = a.endpoint_id WHERE e.app_id = $1 AND a.response_body IS NOT NULL";
    until(
        "the payload receiver's answer recorded",
        Duration::from_secs(60),
        || async { count(&admin, answered, &app).await > 0 },
    )
    .await;
    let portal_port = free_port();
    let origin = format!("http://localhost:{site}");
    let _portal = procs::portal_process(
        &db,
        &dir,
        portal_port,
        &["--frame-ancestor", &origin],
        &logs[1],
    )
    .await;
    let portal = format!("http://127.0.0.1:{portal_port}");
    let new_link = || async {
        let path: String = admin
            .query_one("SELECT hookseal.portal_link($1, '5 minutes')", &[&app])
            .await
            .unwrap()
            .get(0);
        format!("{portal}{path}")
    };
    let d = driver().await;
    let b = browser(&d).await;

    // Framed by the configured origin (another site than the portal's):
    // the portal opens in the iframe.
    b.goto(&format!("{origin}/embed?src={}", new_link().await))
        .await
        .unwrap();
    b.find(Locator::Css("#portal"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    appears(&b, Locator::XPath("//h2[text()='Add an endpoint']")).await;
    let home = text(&b, Locator::Css("main")).await;
    assert!(
        home.contains("<script>window.__pwned=1</script>"),
        "the URL as text: {home}"
    );
    assert!(
        home.contains("<img src=x onerror="),
        "the event type as text: {home}"
    );
    no_payload_element(&b).await;

    // Add an endpoint; the secret is shown once.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/webhooks");
    fill(&b, Locator::Css("form.alter input[name=url]"), &url).await;
    click(&b, Locator::Css("form.alter button[type=submit]")).await;
    appears(&b, Locator::Css("code.secret")).await;
    let secret = text(&b, Locator::Css("code.secret")).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(
        holds_secret(&b.source().await.unwrap(), &secret),
        "the search can find it"
    );
    b.enter_parent_frame().await.unwrap();
    shot(&b, "portal-owner-secret.png").await;
    b.find(Locator::Css("#portal"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    let lines = &logs[3];
    let _receive = procs::receiver(port, &secret_file(&dir, &secret), lines, &logs[2]).await;

    // Its page; a test event, verified by hookseal receive with that secret.
    click(&b, Locator::LinkText("Go to the endpoint")).await;
    appears(&b, Locator::XPath("//button[text()='Send a test event']")).await;
    click(&b, Locator::XPath("//button[text()='Send a test event']")).await;
    appears(&b, Locator::XPath("//h2[text()='Deliveries']")).await;
    until(
        "the test event verified by hookseal receive",
        Duration::from_secs(60),
        || async { !verified(lines).is_empty() },
    )
    .await;
    let test_event: String = admin
        .query_one(
            "SELECT id FROM hookseal.events WHERE app_id = $1 AND type = 'hookseal.test'",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(verified(lines), std::slice::from_ref(&test_event));
    // The attempt, on the page.
    let mut shown = String::new();
    for _ in 0..50 {
        click(&b, Locator::LinkText("Webhooks")).await;
        appears(&b, Locator::XPath("//h2[text()='Deliveries']")).await;
        shown = text(&b, Locator::Css("main")).await;
        if shown.contains("delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        shown.contains(&test_event) && shown.contains("delivered"),
        "{shown}"
    );
    b.enter_parent_frame().await.unwrap();
    shot(&b, "portal-owner.png").await;
    b.find(Locator::Css("#portal"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    click(
        &b,
        Locator::XPath(&format!("//tr[td/code[text()='{test_event}']]/td/a")),
    )
    .await;
    appears(&b, Locator::XPath("//h2[text()='Attempts']")).await;
    let attempt = text(&b, Locator::Css("main table tbody")).await;
    assert!(
        attempt.contains("ok") && attempt.contains("200"),
        "{attempt}"
    );

    // Every page after the secret's, and the payload's answer page.
    let mut pages = vec![b.source().await.unwrap()];
    click(&b, Locator::LinkText("Webhooks")).await;
    appears(&b, Locator::XPath("//h2[text()='Deliveries']")).await;
    pages.push(b.source().await.unwrap());
    click(&b, Locator::LinkText(&url)).await;
    appears(&b, Locator::XPath("//h2[text()='Actions']")).await;
    pages.push(b.source().await.unwrap());
    click(&b, Locator::LinkText("Webhooks")).await;
    appears(&b, Locator::XPath("//h2[text()='Deliveries']")).await;
    let payload_delivery = Locator::XPath("//tr[td[starts-with(text(), '<img')]]/td/a");
    click(&b, payload_delivery).await;
    appears(&b, Locator::XPath("//h2[text()='Attempts']")).await;
    let answer = text(&b, Locator::Css("main table tbody")).await;
    assert!(
        answer.contains("<script>window.__pwned=4</script>"),
        "the answer as text: {answer}"
    );
    no_payload_element(&b).await;
    pages.push(b.source().await.unwrap());
    for (i, page) in pages.iter().enumerate() {
        assert!(
            !holds_secret(page, &secret),
            "page {i} after the secret's holds it"
        );
    }

    // An origin not configured (127.0.0.1 is not localhost) cannot frame it.
    b.enter_parent_frame().await.unwrap();
    b.goto(&format!(
        "http://127.0.0.1:{site}/embed?src={}",
        new_link().await
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.find(Locator::Css("#portal"))
        .await
        .unwrap()
        .enter_frame()
        .await
        .unwrap();
    let framed = b
        .execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await
        .unwrap();
    let framed = framed.as_str().unwrap_or_default();
    assert!(
        !framed.contains("Add an endpoint") && !framed.contains("Deliveries"),
        "{framed}"
    );
    b.close().await.unwrap();

    // No log of any process holds it.
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            !holds_secret(&text, &secret),
            "{} holds the secret",
            log.display()
        );
    }
    drop(admin);
    drop_database(&db).await;
}
