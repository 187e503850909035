//! `hookseal dispatch` as a real process: signals during `--drain`, a role
//! without `hookseal_dispatcher`, a role that loses it while running, and
//! logs written to a file.
//!
//! The database tests need a cluster: `scripts/dispatch-test.sh` runs them
//! with `--ignored` and `HOOKSEAL_TEST_PG=127.0.0.1:<port>` (a cluster with
//! the `hookseal_template` database). The log test needs none.

use std::fs::File;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

const BIN: &str = env!("CARGO_BIN_EXE_hookseal");

// ---------------------------------------------------------------- database

use hookseal_testdb::pg;

/// A fresh database `t_{test}_{pid}` from the template, with one app and
/// one endpoint at `url`: (its name, a superuser connection to it, the app).
async fn database(test: &str, url: &str) -> (String, Client, String) {
    let name = format!("t_{test}_{}", std::process::id());
    let admin = hookseal_testdb::from_template(&name).await;
    let app: String = admin
        .query_one("SELECT hookseal.create_app($1)", &[&test])
        .await
        .unwrap()
        .get(0);
    admin
        .execute(
            "SELECT hookseal.create_endpoint($1, $2, 'native')",
            &[&app, &url],
        )
        .await
        .unwrap();
    (name, admin, app)
}

/// A login role of this cluster (created once), a member of
/// `hookseal_dispatcher` or not.
async fn login_role(admin: &Client, role: &str, dispatcher: bool) {
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                 CREATE ROLE {role} LOGIN;
               END IF;
             END $$;"
        ))
        .await
        .unwrap();
    let change = if dispatcher {
        format!("GRANT hookseal_dispatcher TO {role}")
    } else {
        format!("REVOKE hookseal_dispatcher FROM {role}")
    };
    admin.batch_execute(&change).await.unwrap();
}

async fn send(admin: &Client, app: &str, n: usize) {
    for i in 0..n {
        admin
            .execute(
                "SELECT hookseal.webhook_send($1, 'order.created', jsonb_build_object('n', $2::int))",
                &[&app, &(i as i32)],
            )
            .await
            .unwrap();
    }
}

/// (status, lease_owner, attempts) of every outbox row.
async fn rows(admin: &Client) -> Vec<(String, Option<String>, i32)> {
    admin
        .query(
            "SELECT status::text, lease_owner, attempts FROM hookseal.outbox ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

// ---------------------------------------------------------------- receiver

/// A receiver on 127.0.0.1 that answers 200 after `delay`; counts requests.
async fn receiver(delay: Duration) -> (String, Arc<Mutex<usize>>) {
    let got = Arc::new(Mutex::new(0usize));
    let count = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let count = count.clone();
            async move {
                *count.lock().unwrap() += 1;
                tokio::time::sleep(delay).await;
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

async fn wait_for(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- process

/// `hookseal dispatch` with `args`, stderr into `log`.
fn dispatch(url: &str, args: &[&str], log: &std::path::Path) -> Child {
    Command::new(BIN)
        .arg("dispatch")
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// The exit status within `limit`, or the process is killed and the test fails.
async fn exit_within(child: &mut Child, limit: Duration, log: &std::path::Path) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hookseal dispatch still running after {limit:?}; its log:\n{}",
                read(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read(path: &std::path::Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

fn log_path(test: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hookseal-{test}-{}.log", std::process::id()))
}

// ---------------------------------------------------------------- tests

/// A signal in the middle of `--drain`: the process exits with `code`, no
/// row is left `delivering` under its lease, and every row is still there,
/// each delivered or pending again (finished within the grace, or released).
async fn drain_interrupted(test: &str, sig: &str, code: i32, delay: Duration, grace: &str) {
    let (hook, got) = receiver(delay).await;
    let (name, admin, app) = database(test, &hook).await;
    let role = format!("hookseal_test_{test}");
    login_role(&admin, &role, true).await;
    send(&admin, &app, 20).await;
    let url = format!("postgres://{role}@{}/{name}", pg());
    let log = log_path(test);
    let worker = format!("{test}-worker");
    let args = [
        "--drain",
        "--allow",
        "127.0.0.0/8",
        "--worker-id",
        worker.as_str(),
        "--timeout",
        "10",
        "--lease",
        "60",
        "--poll-ms",
        "50",
        "--shutdown-grace",
        grace,
    ];
    let mut child = dispatch(&url, &args, &log);
    wait_for("a first request", Duration::from_secs(20), || {
        *got.lock().unwrap() > 0
    })
    .await;
    signal(&child, sig);
    let status = exit_within(&mut child, Duration::from_secs(15), &log).await;
    let text = read(&log);
    assert_eq!(status.code(), Some(code), "{status:?}; log:\n{text}");
    let rows = rows(&admin).await;
    assert_eq!(rows.len(), 20, "rows lost: {rows:?}");
    for (status, owner, _) in &rows {
        assert!(
            status == "delivered" || status == "pending",
            "a row left {status} (lease {owner:?}); log:\n{text}"
        );
        assert_ne!(owner.as_deref(), Some(worker.as_str()), "{rows:?}");
    }
    let delivered = rows.iter().filter(|r| r.0 == "delivered").count();
    assert!(
        delivered <= *got.lock().unwrap(),
        "delivered more than received"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn sigterm_during_drain_finishes_in_flight_work_and_exits_143() {
    // A grace long enough for every attempt: all 20 end delivered.
    drain_interrupted("drain_term", "TERM", 143, Duration::from_millis(700), "10").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn sigint_during_drain_releases_what_it_cannot_finish_and_exits_130() {
    // Answers take 5 s, the grace is 0.3 s: the rows go back to pending
    // unsent (attempts not counted) instead of waiting out the lease.
    drain_interrupted("drain_int", "INT", 130, Duration::from_secs(5), "0.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn a_role_without_the_dispatcher_grant_is_refused_at_start() {
    let (hook, got) = receiver(Duration::ZERO).await;
    let (name, admin, app) = database("nogrant", &hook).await;
    login_role(&admin, "hookseal_test_nogrant", false).await;
    send(&admin, &app, 3).await;
    let url = format!("postgres://hookseal_test_nogrant@{}/{name}", pg());
    let log = log_path("nogrant");
    for mode in [
        &["--drain", "--allow", "127.0.0.0/8"][..],
        &["--allow", "127.0.0.0/8"],
    ] {
        let mut child = dispatch(&url, mode, &log);
        let status = exit_within(&mut child, Duration::from_secs(10), &log).await;
        let text = read(&log);
        assert_eq!(status.code(), Some(1), "{mode:?}: {status:?}; log:\n{text}");
        assert!(
            text.contains("role hookseal_test_nogrant lacks USAGE on schema hookseal"),
            "{text}"
        );
        assert!(
            text.contains("GRANT hookseal_dispatcher TO hookseal_test_nogrant"),
            "{text}"
        );
        assert!(
            !text.contains("permission denied for function claim"),
            "{text}"
        );
    }
    // With USAGE on the schema (a writer) but not the dispatcher's
    // functions: each missing function is named.
    admin
        .batch_execute(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hookseal_test_writeronly') THEN
                 CREATE ROLE hookseal_test_writeronly LOGIN IN ROLE hookseal_writer;
               END IF;
             END $$;",
        )
        .await
        .unwrap();
    let url = format!("postgres://hookseal_test_writeronly@{}/{name}", pg());
    let mut child = dispatch(&url, &["--drain", "--maintain-every", "60"], &log);
    let status = exit_within(&mut child, Duration::from_secs(10), &log).await;
    let text = read(&log);
    assert_eq!(status.code(), Some(1), "{status:?}; log:\n{text}");
    for f in [
        "claim(text, integer, interval, integer, text[])",
        "ack_many(text, bigint[], integer[], integer[], timestamptz[]",
        "release(text, bigint[])",
        "maintain(integer, integer)",
    ] {
        assert!(
            text.contains(&format!("EXECUTE on hookseal.{f}")),
            "{f}: {text}"
        );
    }
    assert!(
        text.contains("GRANT hookseal_dispatcher TO hookseal_test_writeronly"),
        "{text}"
    );
    assert_eq!(*got.lock().unwrap(), 0);
    assert!(rows(&admin).await.iter().all(|r| r.0 == "pending"));
}

/// The role loses `hookseal_dispatcher` while the worker runs: the claim's
/// 42501 is permanent, so the process exits 1 instead of retrying it.
async fn losing_the_grant(test: &str, extra: &[&str]) {
    let (hook, got) = receiver(Duration::from_millis(300)).await;
    let (name, admin, app) = database(test, &hook).await;
    let role = format!("hookseal_test_{test}");
    login_role(&admin, &role, true).await;
    send(&admin, &app, 30).await;
    let url = format!("postgres://{role}@{}/{name}", pg());
    let log = log_path(test);
    let mut args = vec!["--allow", "127.0.0.0/8", "--poll-ms", "50", "--batch", "2"];
    args.extend_from_slice(extra);
    let mut child = dispatch(&url, &args, &log);
    wait_for("a first request", Duration::from_secs(20), || {
        *got.lock().unwrap() > 0
    })
    .await;
    admin
        .batch_execute(&format!("REVOKE hookseal_dispatcher FROM {role}"))
        .await
        .unwrap();
    let status = exit_within(&mut child, Duration::from_secs(15), &log).await;
    let text = read(&log);
    assert_eq!(status.code(), Some(1), "{status:?}; log:\n{text}");
    assert!(text.contains("SQLSTATE 42501"), "{text}");
    let refusals = text.matches("permission denied for function claim").count();
    assert!(refusals <= 3, "{refusals} refused claims logged:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn losing_the_grant_stops_the_long_running_worker() {
    losing_the_grant("revoked_run", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn losing_the_grant_stops_a_drain() {
    losing_the_grant("revoked_drain", &["--drain"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_written_to_a_file_have_no_ansi_colours() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://nobody@127.0.0.1:{port}/none");
    let log = log_path("ansi");
    let mut child = dispatch(&url, &["--drain", "--db-timeout", "1"], &log);
    let start = Instant::now();
    let text = loop {
        let text = read(&log);
        if text.contains("cannot connect to the database") {
            break text;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("exited early ({status:?}):\n{text}");
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("no connect warning in 20 s:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let bytes = std::fs::read(&log).unwrap();
    assert!(
        !bytes.contains(&0x1b),
        "ANSI escapes in a log file:\n{text:?}"
    );
    assert!(text.contains("WARN"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/dispatch-test.sh"]
async fn a_second_signal_exits_at_once() {
    // Answers take 30 s and the grace is 60 s: after one SIGTERM the worker
    // waits for its attempts; a second ends it at once. No row is lost: the
    // ones it held stay leased and come back when the lease runs out.
    let test = "second_signal";
    let (hook, got) = receiver(Duration::from_secs(30)).await;
    let (name, admin, app) = database(test, &hook).await;
    let role = format!("hookseal_test_{test}");
    login_role(&admin, &role, true).await;
    send(&admin, &app, 5).await;
    let url = format!("postgres://{role}@{}/{name}", pg());
    let log = log_path(test);
    let args = [
        "--drain",
        "--allow",
        "127.0.0.0/8",
        "--timeout",
        "40",
        "--lease",
        "120",
        "--shutdown-grace",
        "60",
    ];
    let mut child = dispatch(&url, &args, &log);
    wait_for("a first request", Duration::from_secs(20), || {
        *got.lock().unwrap() > 0
    })
    .await;
    signal(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "one signal waits for the attempts in flight; log:\n{}",
        read(&log)
    );
    signal(&child, "INT");
    let status = exit_within(&mut child, Duration::from_secs(5), &log).await;
    let text = read(&log);
    assert_eq!(status.code(), Some(130), "{status:?}; log:\n{text}");
    assert!(text.contains("second signal"), "{text}");
    let rows = rows(&admin).await;
    assert_eq!(rows.len(), 5, "rows lost: {rows:?}");
    assert!(
        rows.iter().all(|r| r.0 == "delivering" || r.0 == "pending"),
        "nothing was delivered, nothing dropped: {rows:?}"
    );
}
