//! The operator console against a real PostgreSQL (a database cloned from
//! `hookseal_template`, either flavour) and a real HTTP client on
//! 127.0.0.1: sign-in and its refusals, the endpoint list and detail with
//! attacker-written values escaped, the security headers, CSRF on the one
//! action, and no secret on any page. Run by scripts/dispatch-test.sh with
//! `--ignored` and HOOKSEAL_TEST_PG=127.0.0.1:<port>.

use std::time::Duration;

use hookseal::{TokenKey, UnixTime};

mod common;
use common::{database, drop_database, portal};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use tokio_postgres::Client;

async fn enabled(admin: &Client, ep: &str) -> bool {
    admin
        .query_one(
            "SELECT enabled FROM hookseal.endpoints WHERE id = $1",
            &[&ep],
        )
        .await
        .unwrap()
        .get(0)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

const XSS_URL: &str = "http://127.0.0.1:9/h?q=\"><script>alert(1)</script>";
const XSS_REASON: &str = "<script>alert(2)</script><img src=x onerror=alert(3)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn an_operator_signs_in_finds_a_disabled_endpoint_and_enables_it() {
    let (db, admin) = database("console").await;
    let app: String = admin
        .query_one("SELECT hookseal.create_app('shop')", &[])
        .await
        .unwrap()
        .get(0);
    let row = admin
        .query_one(
            "SELECT endpoint_id, secret FROM hookseal.create_endpoint($1, $2)",
            &[&app, &XSS_URL],
        )
        .await
        .unwrap();
    let (ep, secret): (String, String) = (row.get(0), row.get(1));
    admin
        .execute(
            "UPDATE hookseal.endpoints SET enabled = false, disabled_reason = $2 WHERE id = $1",
            &[&ep, &XSS_REASON],
        )
        .await
        .unwrap();
    let key = TokenKey::generate().unwrap();
    let token = hookseal_portal::operator_token(&key, Duration::from_secs(60));
    let expired = key.sign("operator", "operator", UnixTime::from_secs(1));
    let base = format!(
        "http://{}",
        portal(&db, TokenKey::from_text(&key.to_text()).unwrap()).await
    );
    let http = client();
    let mut pages = Vec::new();

    // Not signed in: every page sends to the sign-in form.
    for path in ["/", &format!("/endpoints/{ep}"), "/events?id=x"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[LOCATION], "/login");
    }
    // Refused: an expired token, another key's, a session token as a sign-in token, none.
    let other =
        hookseal_portal::operator_token(&TokenKey::generate().unwrap(), Duration::from_secs(60));
    for (bad, why) in [
        (expired.as_str(), "expired"),
        (other.as_str(), "not a sign-in token"),
        ("", "not a sign-in token"),
    ] {
        let r = http
            .post(format!("{base}/login"))
            .form(&[("token", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get(SET_COOKIE).is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains(why), "{page}");
        assert!(
            bad.is_empty() || !page.contains(bad),
            "the token is not echoed"
        );
    }
    // Signed in: an HttpOnly, SameSite=Strict, Secure cookie.
    let r = http
        .post(format!("{base}/login"))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let get = |path: String| {
        let (http, cookie) = (http.clone(), cookie.clone());
        async move { http.get(path).header(COOKIE, cookie).send().await.unwrap() }
    };

    // The list: the endpoint, its reason, escaped; the headers.
    let r = get(format!("{base}/")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("default-src 'none'")
            && csp.contains("script-src 'self';")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let list = r.text().await.unwrap();
    assert!(list.contains(&ep) && list.contains("disabled"), "{list}");
    assert!(
        list.contains("&lt;script&gt;alert(2)"),
        "the reason, escaped:\n{list}"
    );
    // The one script element is the binary's own file.
    assert_eq!(list.matches("<script").count(), 1, "{list}");
    assert!(
        list.contains("<script src=\"/static/portal.js\" defer></script>")
            && !list.contains("<img"),
        "nothing of it runs:\n{list}"
    );
    pages.push(list);

    // The detail: the chart, the enable form with its CSRF field.
    let detail = get(format!("{base}/endpoints/{ep}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        detail.contains("<svg") && detail.contains("0 attempts, 0 failed"),
        "{detail}"
    );
    let csrf = detail
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    assert_eq!(
        detail.matches("<script").count(),
        1,
        "only the binary's own: {detail}"
    );
    pages.push(detail);

    // A POST without the field, or with another session's, changes nothing.
    let other_csrf = key.sign(
        "csrf",
        "another-session",
        UnixTime::from_secs(i64::from(u32::MAX)),
    );
    for form in [vec![], vec![("csrf", other_csrf.as_str())]] {
        let r = http
            .post(format!("{base}/endpoints/{ep}/enable"))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(!enabled(&admin, &ep).await, "refused, and still disabled");
    }
    // With it: enabled, and back to its page.
    let r = http
        .post(format!("{base}/endpoints/{ep}/enable"))
        .header(COOKIE, &cookie)
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    assert!(enabled(&admin, &ep).await);

    // Redrive and replay: one event, its row dead-lettered.
    admin
        .execute(
            "SELECT hookseal.webhook_send($1, 'order.paid', '{}')",
            &[&app],
        )
        .await
        .unwrap();
    admin
        .execute(
            "UPDATE hookseal.outbox SET status = 'dead' WHERE endpoint_id = $1",
            &[&ep],
        )
        .await
        .unwrap();
    let act = |what: &'static str, form: Vec<(&'static str, String)>| {
        let (http, cookie, url) = (
            http.clone(),
            cookie.clone(),
            format!("{base}/endpoints/{ep}/{what}"),
        );
        async move {
            http.post(url)
                .header(COOKIE, cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let r = act(
        "redrive",
        vec![("csrf", csrf.clone()), ("since", String::new())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .ends_with("?redriven=1"));
    let said = get(format!("{base}/endpoints/{ep}?redriven=1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(said.contains("1 dead letters queued again"), "{said}");
    // Replay takes delivered rows: as if a dispatcher had delivered it.
    admin
        .execute(
            "UPDATE hookseal.outbox SET status = 'delivered', delivered_at = now() WHERE endpoint_id = $1",
            &[&ep],
        )
        .await
        .unwrap();
    let since = "2000-01-01T00:00".to_string();
    let r = act("replay", vec![("csrf", csrf.clone()), ("since", since)]).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .ends_with("?replayed=1"));
    let r = act(
        "replay",
        vec![("csrf", csrf.clone()), ("since", "not a time".into())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Rotate: refused without the field; with it, the new secret on that
    // one page only, and it is the endpoint's newest.
    let count = "SELECT count(*) FROM hookseal.secrets WHERE webhook_id = $1";
    let before: i64 = admin.query_one(count, &[&ep]).await.unwrap().get(0);
    let r = act("rotate", vec![("grace", "0".into())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        admin
            .query_one(count, &[&ep])
            .await
            .unwrap()
            .get::<_, i64>(0),
        before
    );
    let shown = act(
        "rotate",
        vec![("csrf", csrf.clone()), ("grace", "0".into())],
    )
    .await
    .text()
    .await
    .unwrap();
    let new_secret = shown
        .split("class=\"secret\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the new secret shown")
        .to_owned();
    let hash: String = admin
        .query_one(
            "SELECT hash FROM hookseal.secrets WHERE webhook_id = $1 ORDER BY created_at DESC LIMIT 1",
            &[&ep],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(hookseal::Secret::new(&new_secret).unwrap().hash_hex(), hash);
    let after = get(format!("{base}/endpoints/{ep}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !after.contains(&new_secret),
        "shown once, not on the endpoint's page"
    );
    pages.push(after);

    // Alter: the form is filled with the current values; a bad value is
    // named and changes nothing; a good one is saved.
    assert!(
        pages[pages.len() - 1].contains("name=\"failure_threshold\" value=\"5\""),
        "{}",
        pages[pages.len() - 1]
    );
    let alter = |max: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("url", "http://127.0.0.1:9/fixed".to_string()),
            ("max_in_flight", max.to_string()),
            ("rate_limit", String::new()),
            ("failure_threshold", "7".to_string()),
        ]
    };
    let r = act("alter", alter("many")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let said = r.text().await.unwrap();
    assert!(
        said.contains("integer") && said.contains("many"),
        "the value named: {said}"
    );
    let opts = "SELECT url, max_in_flight, failure_threshold FROM hookseal.endpoints WHERE id = $1";
    let row = admin.query_one(opts, &[&ep]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), XSS_URL, "unchanged");
    let r = act("alter", alter("3")).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let row = admin.query_one(opts, &[&ep]).await.unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, Option<i32>>(1),
            row.get::<_, i32>(2)
        ),
        ("http://127.0.0.1:9/fixed".to_string(), Some(3), 7)
    );

    // Unknown ids are a page that says so; an event page; the stylesheet.
    assert_eq!(
        get(format!("{base}/endpoints/ep_nope")).await.status(),
        StatusCode::NOT_FOUND
    );
    let event = get(format!("{base}/events?id=evt_nope"))
        .await
        .text()
        .await
        .unwrap();
    assert!(event.contains("No event"), "{event}");
    pages.push(event);
    let css = get(format!("{base}/static/portal.css")).await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let js = get(format!("{base}/static/portal.js")).await;
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    // No page holds the endpoint's secret, whole or without its prefix.
    for s in [&secret, &new_secret] {
        let bare = s.split_once('_').map_or(s.as_str(), |(_, b)| b);
        for p in &pages {
            assert!(!p.contains(bare), "a secret on a page");
        }
    }
    drop(admin);
    drop_database(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn the_list_pages_fifty_endpoints_at_a_time_those_that_need_the_operator_first() {
    let (db, admin) = database("pages").await;
    let apps: Vec<String> = admin
        .query(
            "SELECT hookseal.create_app('app ' || g) FROM generate_series(1, 2) g",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    admin
        .execute(
            "SELECT hookseal.create_endpoint(CASE WHEN g <= 40 THEN $1 ELSE $2 END,
                                             format('https://h%s.example.com/', g))
               FROM generate_series(1, 60) g",
            &[&apps[0], &apps[1]],
        )
        .await
        .unwrap();
    // The last endpoint of the order (the second app's greatest id) is
    // disabled: it comes first.
    let disabled: String = admin
        .query_one(
            "UPDATE hookseal.endpoints SET enabled = false, disabled_reason = 'test'
              WHERE id = (SELECT max(id) FROM hookseal.endpoints WHERE app_id = $1) RETURNING id",
            &[&apps[1]],
        )
        .await
        .unwrap()
        .get(0);
    let key = TokenKey::generate().unwrap();
    let token = hookseal_portal::operator_token(&key, Duration::from_secs(60));
    let base = format!("http://{}", portal(&db, key).await);
    let http = client();
    let r = http
        .post(format!("{base}/login"))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = |path: &str| {
        let (http, cookie, url) = (http.clone(), cookie.clone(), format!("{base}{path}"));
        async move {
            let r = http.get(url).header(COOKIE, cookie).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let rows = |html: &str| html.matches("<tr><td><a href=\"/endpoints/").count();
    let first = page("/").await;
    assert_eq!(rows(&first), 50);
    assert!(first.contains("Endpoints 1–50 of 60"), "{first}");
    assert!(first.contains("href=\"/?page=2\""));
    let at = first
        .find(&format!(">{disabled}<"))
        .expect("the disabled endpoint on page 1");
    assert!(
        at < first.find("example.com").unwrap(),
        "and before the others"
    );
    let second = page("/?page=2").await;
    assert_eq!(rows(&second), 10);
    assert!(second.contains("Endpoints 51–60 of 60") && second.contains("href=\"/?page=1\""));
    let past = page("/?page=9").await;
    assert_eq!(rows(&past), 0, "past the end: an empty page, no error");
    assert!(past.contains("No endpoint on page 9"), "{past}");
    let second_app = page(&format!("/?app={}", apps[1])).await;
    assert_eq!(rows(&second_app), 20);
    assert!(second_app.contains("Endpoints 1–20 of 20"), "{second_app}");
    drop(admin);
    drop_database(&db).await;
}
