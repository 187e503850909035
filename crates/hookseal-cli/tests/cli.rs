//! The `hookseal` binary, run as a real process.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hookseal");

fn run(args: &[&str], envs: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("HOOKSEAL_SERVER_KEY")
        .env_remove("HOOKSEAL_OLD_SERVER_KEYS")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails early (usage error) exits without reading stdin:
    // the write then fails with a broken pipe, which is not the test's concern.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn vectors(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Signs `body` and returns the `-H` arguments of the printed headers.
fn sign(scheme: &str, secret: &str, body: &[u8], extra: &[&str]) -> Vec<String> {
    let mut args = vec!["sign", "--scheme", scheme, "--secret-env", "S"];
    args.extend_from_slice(extra);
    let out = run(&args, &[("S", secret)], body);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert!(!lines.is_empty());
    lines
}

fn verify(scheme: &str, secret: &str, body: &[u8], headers: &[String], extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--scheme", scheme, "--secret-env", "S"];
    for h in headers {
        args.push("-H");
        args.push(h);
    }
    args.extend_from_slice(extra);
    run(&args, &[("S", secret)], body)
}

#[test]
fn every_header_preset_round_trips_and_rejects_a_tampered_body() {
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    for scheme in hookseal::PRESETS {
        if scheme == "signed-url" {
            continue;
        }
        let body = br#"{"event":"e","data":{"k":1}}"#;
        let headers = sign(
            scheme,
            secret,
            body,
            &["--timestamp", "1735421346", "--id", "msg_1"],
        );
        let now = if scheme == "native" {
            "1735421"
        } else {
            "1735421346"
        };
        let ok = verify(
            scheme,
            secret,
            body,
            &headers,
            &["--now", now, "--tolerance", "1000000000"],
        );
        assert_eq!(ok.status.code(), Some(0), "{scheme}: {}", text(&ok.stderr));
        assert_eq!(text(&ok.stdout).trim(), "valid");
        let bad = verify(
            scheme,
            secret,
            br#"{"event":"e","data":{"k":2}}"#,
            &headers,
            &["--now", now, "--tolerance", "1000000000"],
        );
        assert_eq!(bad.status.code(), Some(1), "{scheme}");
        assert!(
            text(&bad.stderr).contains("no signature matches"),
            "{scheme}: {}",
            text(&bad.stderr)
        );
    }
}

#[test]
fn shared_vectors_verify_through_the_binary() {
    for (file, key) in [("schemes.json", "schemes"), ("published.json", "vectors")] {
        for v in vectors(file)[key].as_array().unwrap() {
            let scheme = v["scheme"].as_str().unwrap();
            let secret = v["secret"].as_str().unwrap();
            let body = v["body"].as_str().unwrap().as_bytes();
            let now = v["now"].as_i64().unwrap_or(0).to_string();
            let mut extra = vec!["--now", &now];
            let url;
            if let Some(u) = v["url"].as_str() {
                url = u.to_owned();
                extra.extend(["--url", &url]);
            }
            let headers: Vec<String> = v["headers"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, x)| format!("{k}: {}", x.as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            let out = verify(scheme, secret, body, &headers, &extra);
            let want = if v["expect"] == "reject" { 1 } else { 0 };
            assert_eq!(out.status.code(), Some(want), "{v}: {}", text(&out.stderr));
        }
    }
}

#[test]
fn signed_url_round_trip() {
    let out = run(
        &[
            "sign-url",
            "--secret-env",
            "S",
            "--url",
            "https://receiver.example/flash",
            "--external-id",
            "pay_okARi4tu6T",
            "--json",
        ],
        &[("S", "70-zHZWhaD7kkhgCBbzeog2C")],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        j["url"],
        "https://receiver.example/flash?signature=aKkeJ74LbbSAvFtBu%2BRvS8nl4Lbx1GEdwfiOywGNKaY%3D"
    );
    let body = br#"{"externalId":"pay_okARi4tu6T","status":"COMPLETED"}"#;
    let url = j["url"].as_str().unwrap();
    let ok = verify(
        "signed-url",
        "70-zHZWhaD7kkhgCBbzeog2C",
        body,
        &[],
        &["--url", url],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let other = br#"{"externalId":"pay_other","status":"COMPLETED"}"#;
    let bad = verify(
        "signed-url",
        "70-zHZWhaD7kkhgCBbzeog2C",
        other,
        &[],
        &["--url", url],
    );
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn several_secrets_emit_several_signatures() {
    let (a, b) = ("whsec_aaaaaaaaaaaaaaaaaaaaa", "whsec_bbbbbbbbbbbbbbbbbbbbb");
    let out = run(
        &[
            "sign",
            "--scheme",
            "native",
            "--secret-env",
            "A",
            "--secret-env",
            "B",
            "--id",
            "evt_1",
            "--timestamp",
            "1000",
        ],
        &[("A", a), ("B", b)],
        b"{}",
    );
    assert!(out.status.success());
    let sig = text(&out.stdout);
    let line = sig
        .lines()
        .find(|l| l.starts_with("x-webhook-signature"))
        .unwrap();
    assert_eq!(line.matches("v1,").count(), 2);
    let headers: Vec<String> = sig.lines().map(str::to_owned).collect();
    for s in [a, b] {
        let ok = verify("native", s, b"{}", &headers, &["--now", "1"]);
        assert_eq!(ok.status.code(), Some(0));
    }
    // A single-signature scheme refuses two secrets instead of dropping one.
    let out = run(
        &[
            "sign",
            "--scheme",
            "github",
            "--secret-env",
            "A",
            "--secret-env",
            "B",
        ],
        &[("A", a), ("B", b)],
        b"{}",
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_exit_2_and_never_print_secrets() {
    let secret = "short-secret-value";
    let cases: Vec<Vec<&str>> = vec![
        vec!["verify", "--scheme", "nope", "--secret-env", "S"],
        vec!["verify", "--scheme", "github", "--secret-env", "MISSING"],
        vec![
            "verify",
            "--scheme",
            "github",
            "--secret-env",
            "S",
            "-H",
            "no colon",
        ],
        vec!["sign", "--scheme", "standard", "--secret-env", "S"], // not base64
        vec!["sign", "--scheme", "github"],
        vec!["bogus"],
    ];
    for args in cases {
        let out = run(&args, &[("S", secret)], b"{}");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains(secret), "{args:?}");
        assert!(!text(&out.stdout).contains(secret), "{args:?}");
    }
    // x-signature needs 10 characters: the error says so without the secret.
    let out = run(
        &["sign", "--scheme", "x-signature", "--secret-env", "S"],
        &[("S", "abc123")],
        b"{}",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("shorter"));
    assert!(!text(&out.stderr).contains("abc123"));
}

#[test]
fn encrypt_decrypt_hash() {
    let v = &vectors("schemes.json")["secrets"][0];
    let key = v["server_key_hex"].as_str().unwrap();
    let secret = v["secret"].as_str().unwrap();
    let stored = v["stored"].as_str().unwrap();
    let env = [("HOOKSEAL_SERVER_KEY", key), ("S", secret)];
    let out = run(&["decrypt", "--stored", stored], &env, b"");
    assert_eq!(text(&out.stdout).trim(), secret);
    let out = run(&["hash", "--secret-env", "S"], &env, b"");
    assert_eq!(text(&out.stdout).trim(), v["hash"].as_str().unwrap());
    for flag in [&[][..], &["--versioned"][..]] {
        let mut args = vec!["encrypt", "--secret-env", "S"];
        args.extend_from_slice(flag);
        let out = run(&args, &env, b"");
        assert!(out.status.success());
        let fresh = text(&out.stdout).trim().to_owned();
        assert_ne!(fresh, stored);
        assert!(!fresh.contains(secret));
        let out = run(&["decrypt", "--stored", &fresh], &env, b"");
        assert_eq!(text(&out.stdout).trim(), secret);
    }
    // Wrong key: exit 1, and neither key nor secret is printed.
    let other = "00".repeat(32);
    let out = run(
        &["decrypt", "--stored", stored],
        &[("HOOKSEAL_SERVER_KEY", &other)],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("does not decrypt"));
    assert!(!text(&out.stderr).contains(&other) && !text(&out.stdout).contains(secret));
    // Rotation: the old key still decrypts when listed.
    let out = run(
        &["decrypt", "--stored", stored],
        &[
            ("HOOKSEAL_SERVER_KEY", &other),
            ("HOOKSEAL_OLD_SERVER_KEYS", key),
        ],
        b"",
    );
    assert_eq!(text(&out.stdout).trim(), secret);
}

#[test]
fn an_eleventh_scheme_from_toml() {
    let dir = std::env::temp_dir().join(format!("hookseal-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("acme.toml");
    std::fs::write(
        &path,
        r#"
name = "acme"
algorithm = "sha512"
encoding = "base64"
key = "utf8"
signature = { header = "X-Acme-Signature" }
format = { tag = "v1", tag_separator = "=", list_separator = ",", timestamp_tag = "t" }
timestamp = { unit = "seconds" }
message = "{timestamp}:{body}"
mismatch_status = 401
"#,
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let out = run(
        &[
            "sign",
            "--scheme-file",
            p,
            "--secret-env",
            "S",
            "--timestamp",
            "100",
        ],
        &[("S", "acme-secret")],
        b"hi",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout).trim().to_owned();
    assert!(line.starts_with("X-Acme-Signature: t=100,v1="), "{line}");
    let mut args = vec![
        "verify",
        "--scheme-file",
        p,
        "--secret-env",
        "S",
        "-H",
        &line,
        "--now",
        "100",
        "--json",
    ];
    let ok = run(&args, &[("S", "acme-secret")], b"hi");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    args[8] = "1000";
    let old = run(&args, &[("S", "acme-secret")], b"hi");
    assert_eq!(old.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&old.stdout).unwrap();
    assert_eq!(j["code"], "timestamp_too_old");
    assert_eq!(j["status"], 401);
    // An inconsistent description is a usage error.
    std::fs::write(&path, "name = \"x\"\nalgorithm = \"md5\"\n").unwrap();
    let out = run(
        &["sign", "--scheme-file", p, "--secret-env", "S"],
        &[("S", "acme-secret")],
        b"hi",
    );
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
fn http(port: u16, method: &str, headers: &[String], body: &[u8]) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
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
    s.write_all(body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn receive_verifies_answers_by_the_status_table_and_logs_json() {
    let secret = "pwaKGYs638fjjpwEuJFFczsYfbD3O7Kg";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("hookseal-receive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.jsonl");
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["receive", "--scheme", "x-signature", "--secret-env", "S"])
        .args(["--listen", &listen, "--max-body", "1024", "--log"])
        .arg(&log)
        .env("S", secret)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed().as_secs() < 10, "receiver did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let body = br#"{"id":"evt_1","amount":1}"#;
    let headers = sign("x-signature", secret, body, &[]);
    assert_eq!(http(port, "GET", &[], b"").0, 405);
    assert_eq!(http(port, "POST", &headers, body).0, 200);
    let (code, answer) = http(port, "POST", &[], body);
    assert_eq!(code, 400, "missing x-signature: {answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"], "missing_header");
    assert!(answer["message"].as_str().unwrap().contains("x-signature"));
    let wrong = vec![format!("x-signature: {}", "0".repeat(64))];
    assert_eq!(http(port, "POST", &wrong, body).0, 400);
    assert_eq!(http(port, "POST", &headers, &[b' '; 2048]).0, 413);
    // SIGTERM flushes the log and exits 0.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let oks: Vec<bool> = lines.iter().map(|l| l["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [false, true, false, false, false]);
    let codes: Vec<&str> = lines
        .iter()
        .map(|l| l["code"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        codes,
        [
            "method_not_allowed",
            "",
            "missing_header",
            "no_matching_signature",
            "body_too_large"
        ]
    );
    assert_eq!(lines[1]["event"], "evt_1");
    assert_eq!(lines[1]["id"], "evt_1", "no id header: the body's id");
    assert!(!std::fs::read_to_string(&log).unwrap().contains(secret));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `json-stringify.json` through the binary: `raw` verifies under both
/// re-serializing schemes, and signing `raw` sends `canonical` (printed
/// after the headers, and written by --body-out) with the vector's signature.
#[test]
fn json_stringify_vectors_through_the_binary() {
    let doc = vectors("json-stringify.json");
    let secret = doc["secret"].as_str().unwrap();
    let dir = std::env::temp_dir().join(format!("hookseal-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("body");
    let out_path = out_file.to_str().unwrap();
    let mut checked = 0;
    for v in doc["vectors"].as_array().unwrap() {
        let raw = v["raw"].as_str().unwrap();
        let canonical = v["canonical"].as_str().unwrap();
        for (scheme, header) in [("x-signature", "x-signature"), ("fincra", "signature")] {
            let sig = v[scheme].as_str().unwrap();
            let ok = verify(
                scheme,
                secret,
                raw.as_bytes(),
                &[format!("{header}: {sig}")],
                &[],
            );
            assert_eq!(
                ok.status.code(),
                Some(0),
                "{scheme} {v}: {}",
                text(&ok.stderr)
            );

            let lines = sign(scheme, secret, raw.as_bytes(), &[]);
            assert_eq!(lines[0], format!("{header}: {sig}"), "{scheme} {v}");
            if raw == canonical {
                assert_eq!(lines.len(), 1, "{lines:?}");
            } else {
                assert_eq!(&lines[1..], ["", canonical], "{scheme} {v}");
            }
            let lines = sign(scheme, secret, raw.as_bytes(), &["--body-out", out_path]);
            assert_eq!(lines, [format!("{header}: {sig}")]);
            assert_eq!(std::fs::read_to_string(&out_file).unwrap(), canonical);

            let json = sign(scheme, secret, raw.as_bytes(), &["--json"]);
            let j: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
            assert_eq!(j["headers"][header], sig);
            let want = if raw == canonical {
                serde_json::Value::Null
            } else {
                canonical.into()
            };
            assert_eq!(j["body"], want, "{scheme} {v}");
            checked += 1;
        }
    }
    assert_eq!(checked, 40);
    // Not JSON: sent and signed as it is.
    let lines = sign("x-signature", secret, b"a=1&b=2", &["--body-out", out_path]);
    assert_eq!(lines.len(), 1);
    assert_eq!(std::fs::read(&out_file).unwrap(), b"a=1&b=2");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Surrounding spaces and tabs of a header value are not part of it, as in
/// HTTP: the CLI accepts them like every HTTP adapter does.
#[test]
fn header_values_are_trimmed_like_http() {
    let secret = "It's a Secret to Everybody";
    let body = b"Hello, World!";
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    for h in [
        format!("X-Hub-Signature-256: {sig}"),
        format!("X-Hub-Signature-256:{sig}"),
        format!("X-Hub-Signature-256: {sig} "),
        format!("X-Hub-Signature-256:\t {sig}\t"),
    ] {
        let out = verify("github", secret, body, std::slice::from_ref(&h), &[]);
        assert_eq!(out.status.code(), Some(0), "{h:?}: {}", text(&out.stderr));
    }
    // Whitespace inside the value is still part of it.
    let inner = format!("X-Hub-Signature-256: sha256= {}", &sig[7..]);
    let out = verify("github", secret, body, &[inner], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn times_in_the_wrong_unit_and_a_missing_url_are_usage_errors() {
    let env = [("S", "whsec_dGVzdF9zZWNyZXRfZm9yX2hvb2tzZWFs")];
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // verify --now takes seconds: milliseconds are named as such.
    let o = run(
        &[
            "verify",
            "--scheme",
            "github",
            "--secret-env",
            "S",
            "--now",
            "1735421346000",
            "-H",
            "X-Hub-Signature-256: sha256=00",
        ],
        &env,
        b"{}",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("looks like Unix milliseconds") && stderr(&o).contains("1735421346"),
        "{}",
        stderr(&o)
    );
    // sign --timestamp is in the scheme's unit: milliseconds to a seconds
    // scheme say so; a scheme without a timestamp ignores it; milliseconds
    // to `native` (a milliseconds scheme) are right.
    for (scheme, exit) in [("standard", 2), ("github", 0), ("native", 0)] {
        let args = [
            "sign",
            "--scheme",
            scheme,
            "--secret-env",
            "S",
            "--timestamp",
            "1735421346000",
        ];
        let o = run(&args, &env, b"{}");
        assert_eq!(o.status.code(), Some(exit), "{scheme}: {}", stderr(&o));
    }
    // signed-url without --url: a usage error naming the query parameter.
    let o = run(
        &["verify", "--scheme", "signed-url", "--secret-env", "S"],
        &env,
        b"",
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--url is required"), "{}", stderr(&o));
}
