//! The real processes the browser tests run beside the browser: the
//! `hookseal` binary (built by scripts/dispatch-test.sh before the tests)
//! as dispatcher, receiver and portal, each killed when dropped, each
//! logging to a file the test reads (for what arrived, and to search for
//! secrets).
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pg;

/// A child process, killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The CLI: HOOKSEAL_BIN, else the workspace's debug build.
pub fn bin() -> PathBuf {
    std::env::var_os("HOOKSEAL_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/hookseal"),
        PathBuf::from,
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Until something accepts connections on 127.0.0.1:`port` (20 s).
pub async fn wait_port(port: u16) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing listens on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` every 100 ms until it holds (at most `within`).
pub async fn until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn(args: &[&str], log: &Path) -> Proc {
    let err = std::fs::File::create(log).unwrap();
    let child = Command::new(bin())
        .args(args)
        .stdout(err.try_clone().unwrap())
        .stderr(err)
        .stdin(Stdio::null())
        .spawn()
        .expect("target/debug/hookseal (cargo build -p hookseal-cli)");
    Proc(child)
}

/// `hookseal dispatch` for `db` (the dispatcher login), destinations on
/// loopback allowed; the portable flavour's sealing key when the test
/// cluster has one.
pub fn dispatcher(db: &str, log: &Path) -> Proc {
    let url = format!("postgres://hookseal_test_dispatcher@{}/{db}", pg());
    let mut args = vec!["dispatch", "--database-url", &url, "--allow", "127.0.0.0/8"];
    let key = hookseal_testdb::sealing_key_file();
    if let Some(k) = &key {
        args.extend(["--sealing-key-file", k]);
    }
    spawn(&args, log)
}

/// `hookseal receive` on `port` verifying with the secret in `secret_file`
/// (Standard Webhooks, the `native` scheme), a JSON line per request in
/// `lines`.
pub async fn receiver(port: u16, secret_file: &Path, lines: &Path, log: &Path) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let p = spawn(
        &[
            "receive",
            "--scheme",
            "native",
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--listen",
            &listen,
            "--log",
            lines.to_str().unwrap(),
        ],
        log,
    );
    wait_port(port).await;
    p
}

/// `hookseal portal` for `db` on `port` with `extra` arguments; its key
/// made first by `hookseal portal-token --new-key` in `dir`.
pub async fn portal_process(db: &str, dir: &Path, port: u16, extra: &[&str], log: &Path) -> Proc {
    let key = dir.join("portal.key");
    let key = key.to_str().unwrap();
    let made = Command::new(bin())
        .args(["portal-token", "--new-key", "--key-file", key])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let url = format!("postgres://hookseal_test_admin@{}/{db}", pg());
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "portal",
        "--database-url",
        &url,
        "--key-file",
        key,
        "--listen",
        &listen,
        "--allow",
        "127.0.0.0/8",
    ];
    args.extend_from_slice(extra);
    let p = spawn(&args, log);
    wait_port(port).await;
    p
}

/// An operator sign-in token from the portal's key file in `dir`.
pub fn operator_token(dir: &Path) -> String {
    let key = dir.join("portal.key");
    let out = Command::new(bin())
        .args([
            "portal-token",
            "--operator",
            "--key-file",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The `ok` lines `hookseal receive` wrote: the message ids verified.
pub fn verified(lines: &Path) -> Vec<String> {
    std::fs::read_to_string(lines)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["ok"] == true)
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect()
}
