//! The operator console in a real browser: Debian's chromium, headless,
//! driven through chromedriver (WebDriver) by fantoccini, against a real
//! PostgreSQL (either flavour). An operator signs in, finds the disabled
//! endpoint whose URL and reason are script payloads (none runs: checked in
//! the page), opens it, sees its chart and enables it; screenshots of the
//! pages go to HOOKSEAL_SCREENSHOTS (docs/ holds the current ones). Run by
//! scripts/dispatch-test.sh (`--ignored`, HOOKSEAL_TEST_PG, chromedriver
//! on PATH).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use hookseal::TokenKey;

mod common;
use common::{database, drop_database, portal};
use tokio_postgres::Client;

/// chromedriver on a free loopback port; killed on drop.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .env("TZ", "Asia/Kolkata")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver on PATH (Debian: chromium-driver)");
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver(child, port)
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

async fn click(b: &Browser, at: Locator<'_>) {
    b.find(at).await.unwrap().click().await.unwrap();
}

/// Waits (10 s at most) for an element of the page a click leads to: a
/// click returns before the browser has navigated.
async fn appears(b: &Browser, at: Locator<'_>) {
    b.wait()
        .at_most(Duration::from_secs(10))
        .for_element(at)
        .await
        .unwrap();
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
