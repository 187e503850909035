//! Issue 20 through the binary: one body limit for signer and verifier,
//! usage errors for options that cannot work or have no effect, messages
//! that say what happened, and the docs' own examples run as written.

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
    // A usage error exits before reading stdin: a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap()
}

/// A file of this test's own in the target directory.
fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("usage");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{}-{name}", std::process::id()));
    std::fs::write(&p, content).unwrap();
    p
}

/// `-H` arguments for each `Name: value` line before the first empty line.
fn header_args(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .take_while(|l| !l.is_empty())
        .flat_map(|l| ["-H".to_owned(), l.to_owned()])
        .collect()
}

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// 12: a body over the core's limit is signed with a warning; `verify`
/// refuses it by default and takes it with `--max-body`.
#[test]
fn sign_warns_past_the_receivers_limit_and_verify_takes_max_body() {
    let limit = hookseal::DEFAULT_MAX_BODY;
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(300 * 1024));
    let env = [("S", SECRET)];
    let signed = run(
        &["sign", "--scheme", "github", "--secret-env", "S"],
        &env,
        body.as_bytes(),
    );
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    let warning = text(&signed.stderr);
    assert!(
        warning.contains("warning") && warning.contains(&limit.to_string()),
        "{warning}"
    );
    let headers = header_args(&text(&signed.stdout));
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", "--scheme", "github", "--secret-env", "S"];
        args.extend(headers.iter().map(String::as_str));
        args.extend_from_slice(extra);
        run(&args, &env, body.as_bytes())
    };
    let refused = verify(&[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains(&format!("larger than {limit} bytes")),
        "{}",
        text(&refused.stderr)
    );
    let raised = verify(&["--max-body", "400000"]);
    assert_eq!(raised.status.code(), Some(0), "{}", text(&raised.stderr));

    // A body within the limit signs without a word on stderr.
    let small = run(
        &["sign", "--scheme", "github", "--secret-env", "S"],
        &env,
        b"{}",
    );
    assert_eq!(text(&small.stderr), "");
    // Both verifying commands show the same default, the core's.
    for cmd in ["verify", "receive"] {
        let help = text(&run(&[cmd, "--help"], &[], b"").stdout);
        assert!(
            help.contains("--max-body <BYTES>") && help.contains(&format!("[default: {limit}]")),
            "{cmd}: {help}"
        );
    }
}

/// 12: README's table names one body limit per path, the core's number.
#[test]
fn readme_tables_the_body_limit_of_every_path() {
    let readme = read("README.md");
    let limit = hookseal::DEFAULT_MAX_BODY.to_string();
    for path in [
        "`hookseal verify`",
        "`hookseal receive`",
        "hookseal-axum",
        "`MAX_BODY_BYTES`",
        "`webhook_send`",
    ] {
        let row = readme
            .lines()
            .find(|l| l.starts_with('|') && l.contains(path))
            .unwrap_or_else(|| panic!("no body-limit row for {path}"));
        if path != "`webhook_send`" {
            assert!(row.contains(&limit), "{row}");
        }
    }
}

/// The fenced block after `marker` in `doc`.
fn block_after(doc: &str, marker: &str) -> String {
    let rest = &doc[doc.find(marker).expect("marker") + marker.len()..];
    let start = rest.find("```json\n").expect("a json block") + "```json\n".len();
    let len = rest[start..].find("```").expect("a closed block");
    rest[start..start + len].to_owned()
}

/// 13b: the named-headers example of docs/SCHEMES.md signs with `-H`,
/// reproduces the vector's signature, and verifies; so does its Hook0
/// description (issue 24).
#[test]
fn sign_signs_named_headers_of_the_docs_example() {
    docs_example_signs_and_verifies(
        "Example (`tests/vectors/named-headers.json`):",
        "tests/vectors/named-headers.json",
    );
    docs_example_signs_and_verifies(
        "from Hook0's rules, with Hook0's own three test signatures beside):",
        "tests/vectors/hook0.json",
    );
    // -H for a scheme that signs no named headers is a usage error.
    let (env, body) = ([("S", "a-secret-of-enough-length")], b"{}");
    let github = run(
        &[
            "sign",
            "--scheme",
            "github",
            "--secret-env",
            "S",
            "-H",
            "x-a: 1",
        ],
        &env,
        body,
    );
    assert_eq!(github.status.code(), Some(2));
    assert!(
        text(&github.stderr).contains("signs no named headers"),
        "{}",
        text(&github.stderr)
    );
}

/// The description block after `marker` in docs/SCHEMES.md is `vector`'s
/// scheme; `hookseal sign -H …` with it writes the vector's signature and
/// prints the named headers; `hookseal verify` accepts what it wrote;
/// without `-H` it is a usage error that names the option.
fn docs_example_signs_and_verifies(marker: &str, vector: &str) {
    let doc = block_after(&read("docs/SCHEMES.md"), marker);
    let vector: serde_json::Value = serde_json::from_str(&read(vector)).unwrap();
    let described: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(
        described, vector["scheme"],
        "the doc's block is the vector's"
    );
    let name = format!("{}.json", vector["scheme"]["name"].as_str().unwrap());
    let path = scratch(&name, doc.as_bytes());
    let file = path.to_str().unwrap();
    let env = [("S", vector["secret"].as_str().unwrap())];
    let sign = &vector["sign"];
    let body = sign["body"].as_str().unwrap().as_bytes();
    let mut args = vec!["sign", "--scheme-file", file, "--secret-env", "S"];
    args.extend(["--timestamp", "1735421346"]);
    let header = vector["scheme"]["signature"]["header"].as_str().unwrap();
    let named: Vec<String> = sign["named"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}", p[0].as_str().unwrap(), p[1].as_str().unwrap()))
        .collect();
    for h in &named {
        args.extend(["-H", h]);
    }
    let out = run(&args, &env, body);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    let expected = format!("{header}: {}", sign["signature"].as_str().unwrap());
    assert_eq!(lines.lines().next(), Some(expected.as_str()), "{lines}");
    for h in &named {
        assert!(
            lines.lines().any(|l| l == h),
            "the named headers are printed: {lines}"
        );
    }
    let mut verify = vec!["verify", "--scheme-file", file, "--secret-env", "S"];
    verify.extend(["--now", "1735421346"]);
    let headers = header_args(&lines);
    verify.extend(headers.iter().map(String::as_str));
    let ok = run(&verify, &env, body);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let none = run(&args[..7], &env, body);
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none.stderr).contains("-H"), "{}", text(&none.stderr));
}

/// 14a: 300.5 s old is reported as past the 300 s tolerance.
#[test]
fn a_timestamp_just_past_the_tolerance_says_so() {
    let env = [("S", SECRET)];
    let signed = run(
        &[
            "sign",
            "--scheme",
            "native",
            "--secret-env",
            "S",
            "--id",
            "m1",
            "--timestamp",
            "1735421045500",
        ],
        &env,
        b"{}",
    );
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    let mut args = vec!["verify", "--scheme", "native", "--secret-env", "S"];
    args.extend(["--now", "1735421346"]);
    let headers = header_args(&text(&signed.stdout));
    args.extend(headers.iter().map(String::as_str));
    let out = run(&args, &env, b"{}");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("timestamp is over 300 s old, more than the 300 s tolerance"),
        "{err}"
    );
}

/// 14b: a negative tolerance is refused by name, as a usage error.
#[test]
fn a_negative_tolerance_is_a_usage_error() {
    for cmd in ["verify", "receive"] {
        for t in [&["--tolerance", "-5"][..], &["--tolerance=-5"]] {
            let mut args = vec![cmd, "--scheme", "github", "--secret-env", "S"];
            args.extend_from_slice(t);
            let out = run(&args, &[("S", SECRET)], b"{}");
            assert_eq!(out.status.code(), Some(2), "{cmd} {t:?}");
            let err = text(&out.stderr);
            assert!(err.contains("0 or more, not -5"), "{cmd} {t:?}: {err}");
        }
    }
}

/// 14d: sign-url refuses a URL holding the signature parameter already and
/// a URL that is not HTTP; what it signs, its verify accepts.
#[test]
fn sign_url_refuses_what_its_verify_would_refuse() {
    let env = [("S", SECRET)];
    for (url, says) in [
        (
            "https://example.com/cb?signature=abc",
            "already holds the `signature` query parameter",
        ),
        ("ftp://example.com/cb", "http:// or https://"),
        ("example.com/cb", "http:// or https://"),
    ] {
        let out = run(&["sign-url", "--secret-env", "S", "--url", url], &env, b"");
        assert_eq!(out.status.code(), Some(2), "{url}");
        assert!(
            text(&out.stderr).contains(says),
            "{url}: {}",
            text(&out.stderr)
        );
    }
    let out = run(
        &[
            "sign-url",
            "--secret-env",
            "S",
            "--url",
            "https://example.com/cb?ref=1",
            "--json",
        ],
        &env,
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let signed: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let body = format!(
        "{{\"externalId\":\"{}\"}}",
        signed["external_id"].as_str().unwrap()
    );
    let ok = run(
        &[
            "verify",
            "--scheme",
            "signed-url",
            "--secret-env",
            "S",
            "--url",
            signed["url"].as_str().unwrap(),
        ],
        &env,
        body.as_bytes(),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
}

/// 14e: `keygen --bytes` where it has no effect is refused; where it has
/// one it sets the length.
#[test]
fn keygen_bytes_only_where_it_does_something() {
    for args in [
        &["keygen", "--scheme", "github", "--bytes", "40"][..],
        &["keygen", "--scheme", "standard-v1a", "--bytes", "40"],
        &["keygen", "--bytes", "40"],
        &["keygen", "--id", "evt", "--bytes", "40"],
        &["keygen", "--server-key", "--bytes", "40"],
    ] {
        let out = run(args, &[], b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
    let github = run(&["keygen", "--scheme", "github", "--bytes", "40"], &[], b"");
    let err = text(&github.stderr);
    assert!(
        err.contains("--bytes has no effect for `github`") && err.contains("standard"),
        "{err}"
    );
    let out = run(
        &["keygen", "--scheme", "standard", "--bytes", "48"],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // whsec_ + base64 of 48 bytes.
    assert_eq!(text(&out.stdout).trim().len(), "whsec_".len() + 64);
    let out = run(&["keygen", "--scheme", "standard"], &[], b"");
    assert_eq!(text(&out.stdout).trim().len(), "whsec_".len() + 44);
}

/// 14f: keygen's unknown-scheme error lists what keygen takes, from the
/// core's one list.
#[test]
fn keygen_lists_every_name_it_takes() {
    let out = run(&["keygen", "--scheme", "bogus"], &[], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let names = hookseal::Scheme::key_names();
    assert!(names.iter().any(|n| n == "standard-v1a"));
    assert!(
        err.contains(&format!("(known: {})", names.join(", "))),
        "{err}"
    );
    for n in &names {
        let out = run(&["keygen", "--scheme", n], &[], b"");
        assert_eq!(out.status.code(), Some(0), "{n}: {}", text(&out.stderr));
    }
}

/// 13c: the documented way to make a server key keeps it, and what it
/// encrypts decrypts with the kept key.
#[test]
fn the_server_key_example_keeps_the_key() {
    let thrown_away = "HOOKSEAL_SERVER_KEY=$(hookseal keygen --server-key)";
    let help = text(&run(&["--help"], &[], b"").stdout);
    for (what, doc) in [("README.md", read("README.md")), ("--help", help)] {
        assert!(
            !doc.contains(thrown_away),
            "{what} throws the server key away"
        );
        assert!(
            doc.contains("hookseal keygen --server-key > server.key"),
            "{what}"
        );
        assert!(
            doc.contains("HOOKSEAL_SERVER_KEY=$(cat server.key)"),
            "{what}"
        );
    }
    let key = text(&run(&["keygen", "--server-key"], &[], b"").stdout);
    let key = key.trim();
    let env = [("HOOKSEAL_SERVER_KEY", key), ("WH_SECRET", SECRET)];
    let stored = run(&["encrypt", "--secret-env", "WH_SECRET"], &env, b"");
    let stored = text(&stored.stdout);
    let back = run(&["decrypt", "--stored", stored.trim()], &env, b"");
    assert_eq!(text(&back.stdout).trim(), SECRET);
}

/// 13a: the docs say what the Lambda forwards and stores, not "its original
/// body" (re-serializing schemes send the compact form; store mode parses).
#[test]
fn docs_say_what_the_lambda_forwards() {
    for path in ["README.md", "deploy/README.md"] {
        let doc = read(path);
        assert!(!doc.contains("with its original body"), "{path}");
        assert!(doc.contains("compact"), "{path}");
        assert!(doc.contains("`1.10`") && doc.contains("`1.1`"), "{path}");
    }
}

/// `hookseal receive` refuses a secret under the configured floor, as the
/// Lambda does, naming the minimum and not the secret; `hookseal verify`
/// still checks with one (published vectors use short secrets).
#[test]
fn receive_refuses_a_short_secret_that_verify_accepts() {
    let min = hookseal::MIN_CONFIGURED_SECRET_LEN.to_string();
    let short = "s3cr3t-short"; // 12 characters
    let out = run(
        &[
            "receive",
            "--scheme",
            "github",
            "--secret-env",
            "S",
            "--listen",
            "127.0.0.1:0",
        ],
        &[("S", short)],
        b"",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&min) && err.contains("secret 1"), "{err}");
    assert!(!err.contains(short), "{err}");
    // The second of two secrets is named by its place.
    let out = run(
        &[
            "receive",
            "--scheme",
            "github",
            "--secret-env",
            "S",
            "--secret-env",
            "T",
            "--listen",
            "127.0.0.1:0",
        ],
        &[("S", "a-long-enough-secret-1"), ("T", short)],
        b"",
    );
    assert!(
        text(&out.stderr).contains("secret 2"),
        "{}",
        text(&out.stderr)
    );
    // verify: the scheme's own minimum; a wrong signature is a refusal, not a usage error.
    let out = run(
        &[
            "verify",
            "--scheme",
            "github",
            "--secret-env",
            "S",
            "--header",
            "X-Hub-Signature-256: sha256=00",
        ],
        &[("S", short)],
        b"{}",
    );
    assert_ne!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `hookseal portal-token`: the key file is made once (0600, never
/// overwritten), an operator token from it opens with it, and `hookseal
/// portal` without a key file says how to make one.
#[test]
fn portal_tokens_come_from_a_key_file_made_once() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("hookseal-portal-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("portal.key");
    let k = key.to_str().unwrap();
    let made = run(&["portal-token", "--new-key", "--key-file", k], &[], b"");
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = run(&["portal-token", "--new-key", "--key-file", k], &[], b"");
    assert_eq!(again.status.code(), Some(1), "never overwritten");
    let out = run(
        &["portal-token", "--operator", "--key-file", k, "--ttl", "60"],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_owned();
    let opened = hookseal::TokenKey::from_text(&std::fs::read_to_string(&key).unwrap())
        .unwrap()
        .open("operator", &token, hookseal::UnixTime::now());
    assert_eq!(opened.as_deref(), Ok("operator"));
    let none = dir.join("missing.key");
    let out = run(
        &[
            "portal",
            "--database-url",
            "postgres://x@127.0.0.1:1/x",
            "--key-file",
            none.to_str().unwrap(),
        ],
        &[],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("portal-token --new-key"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 24: `--proxy` takes an http:// proxy only, says so before touching
/// the database, and never repeats the proxy's password.
#[test]
fn dispatch_refuses_a_proxy_it_cannot_use() {
    for (proxy, says) in [
        (
            "https://user:hunter2@proxy.internal:3128",
            "`https://` is not supported",
        ),
        (
            "socks5://proxy.internal:1080",
            "`socks5://` is not supported",
        ),
        (
            "http://user:hunter2@proxy.internal:3128/path",
            "without a path",
        ),
        ("proxy.internal", "not a URL"),
    ] {
        let out = run(
            &[
                "dispatch",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
                "--proxy",
                proxy,
            ],
            &[],
            b"",
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{proxy}: {err}");
        assert!(
            err.contains("--proxy") && err.contains(says),
            "{proxy}: {err}"
        );
        assert!(!err.contains("hunter2"), "{proxy}: {err}");
    }
}
