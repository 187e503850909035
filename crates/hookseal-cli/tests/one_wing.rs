//! `hookseal receive` and the Lambda adapter answer every request in one
//! shape, because both sit on the same receive wing (`hookseal-axum`): the
//! same good and bad requests to both (real servers on 127.0.0.1) get the
//! same status, the same `Allow`, the same JSON.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use hookseal::{Message, Scheme, Secret, Signer};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hookseal");
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One raw HTTP/1.1 exchange: status, `Allow`, JSON body.
fn exchange(port: u16, method: &str, headers: &[String], body: &[u8]) -> (u16, String, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head[9..12].parse().unwrap();
    let allow = head
        .lines()
        .find_map(|l| l.strip_prefix("allow: "))
        .unwrap_or("")
        .to_owned();
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"));
    (status, allow, json)
}

fn signed(id: &str, body: &[u8], timestamp: Option<i64>) -> Vec<String> {
    let signer = Signer::new(
        Scheme::preset("standard").unwrap(),
        &[Secret::new(SECRET).unwrap()],
    )
    .unwrap();
    signer
        .sign(&Message {
            body,
            id: Some(id),
            timestamp: timestamp.map(hookseal::UnixTime::from_secs),
        })
        .unwrap()
        .headers
        .into_iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    let start = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed().as_secs() < 10,
            "server on {port} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The Lambda adapter's router, served as its `bootstrap` does outside Lambda.
fn lambda(port: u16) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let vars: HashMap<String, String> = [
            ("INBOUND_SCHEME", "standard"),
            ("INBOUND_SECRET", SECRET),
            ("INBOUND_PATH", "/hook"),
            ("MAX_BODY_BYTES", "1024"),
            // Verify-only on purpose: the wing's answers are the subject.
            ("HOOKSEAL_MODE", "verify-only"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let env = move |k: &str| vars.get(k).cloned();
        let settings = hookseal_lambda::Loader::new(&env).load().await.unwrap();
        let app = hookseal_lambda::App::new(settings).unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let router = app.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
    });
    rt
}

#[test]
fn the_lambda_and_hookseal_receive_answer_alike() {
    let (cli_port, lambda_port) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args(["receive", "--scheme", "standard", "--secret-env", "S"])
        .args([
            "--listen",
            &format!("127.0.0.1:{cli_port}"),
            "--max-body",
            "1024",
        ])
        .env("S", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _rt = lambda(lambda_port);
    wait_for(cli_port);
    wait_for(lambda_port);

    let body = br#"{"type":"order.created"}"#;
    let now = hookseal::UnixTime::now().as_secs();
    let good = signed("msg_1", body, None);
    let mut wrong = good.clone();
    wrong[0] = "webhook-signature: v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
    let mut truncated = good.clone();
    truncated[0] = "webhook-signature: v1,".into();
    let mut repeated = good.clone();
    repeated.push(good[1].clone());
    let mut bad_id = good.clone();
    bad_id.retain(|h| !h.starts_with("webhook-id"));
    bad_id.push("webhook-id: a b".into());
    let big = vec![b' '; 2048];
    let cases: Vec<(&str, &str, Vec<String>, Vec<u8>)> = vec![
        ("verified", "POST", good.clone(), body.to_vec()),
        ("GET", "GET", vec![], vec![]),
        ("PUT", "PUT", good.clone(), body.to_vec()),
        ("no headers", "POST", vec![], body.to_vec()),
        ("wrong signature", "POST", wrong, body.to_vec()),
        ("truncated signature", "POST", truncated, body.to_vec()),
        ("repeated header", "POST", repeated, body.to_vec()),
        ("space in id", "POST", bad_id, body.to_vec()),
        (
            "stale",
            "POST",
            signed("msg_2", body, Some(now - 3600)),
            body.to_vec(),
        ),
        (
            "future",
            "POST",
            signed("msg_3", body, Some(now + 3600)),
            body.to_vec(),
        ),
        (
            "tampered body",
            "POST",
            good.clone(),
            br#"{"type":"order.deleted"}"#.to_vec(),
        ),
        (
            "too large",
            "POST",
            signed("msg_4", &big, None),
            big.clone(),
        ),
    ];
    let mut statuses = Vec::new();
    for (name, method, headers, body) in &cases {
        let cli = exchange(cli_port, method, headers, body);
        let lam = exchange(lambda_port, method, headers, body);
        assert_eq!(cli, lam, "{name}: hookseal receive vs the Lambda");
        if cli.0 != 200 {
            assert!(
                cli.2["error"].is_string() && cli.2["message"].is_string(),
                "{name}: {cli:?}"
            );
        }
        statuses.push((*name, cli.0));
    }
    assert_eq!(
        statuses.iter().map(|s| s.1).collect::<Vec<_>>(),
        [200, 405, 405, 400, 400, 400, 400, 400, 400, 400, 400, 413],
        "{statuses:?}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
