//! Differential test against Node.js: for generated JSON texts (random
//! whitespace, number forms with exponents, trailing zeros, `-0`, 17+
//! digits, subnormals and overflow, integer-like and repeated keys, escapes,
//! surrogate pairs and lone surrogates), `json::compact` must equal Node's
//! `JSON.stringify(JSON.parse(text))` byte for byte.
//!
//! One long-running `node` process answers line by line (base64 in, base64
//! out). Needs `node` on PATH (`scripts/lib.sh` installs it); the case count
//! is `HOOKSEAL_NODE_CASES` (default 10,000).

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine;
use hookseal::json;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const NODE_SCRIPT: &str = r#"
const rl = require('readline').createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const text = Buffer.from(line, 'base64').toString('utf8');
  let out;
  try {
    out = Buffer.from(JSON.stringify(JSON.parse(text)), 'utf8').toString('base64');
  } catch (e) {
    out = '!';
  }
  process.stdout.write(out + '\n');
});
"#;

struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Node {
    fn start() -> Node {
        let mut child = Command::new("node")
            .args(["-e", NODE_SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("`node` must be on PATH for this test (scripts/lib.sh need_node installs it)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Node {
            child,
            stdin,
            stdout,
        }
    }

    /// Node's `JSON.stringify(JSON.parse(text))`, or `None` when it throws.
    fn stringify(&mut self, text: &str) -> Option<Vec<u8>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        writeln!(self.stdin, "{}", b64.encode(text)).unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        match line.trim_end() {
            "!" => None,
            out => Some(b64.decode(out).unwrap()),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![" ", "\t", "\n", "\r"]), 0..3)
        .prop_map(|v| v.concat())
}

fn number() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        "0",
        "-0",
        "-0.0",
        "0.0",
        "1.0",
        "2.50",
        "1e5",
        "1E-7",
        "1e21",
        "1e-7",
        "1e400",
        "-1e400",
        "5e-324",
        "2e-324",
        "4.9406564584124654e-324",
        "2.2250738585072014e-308",
        "1.7976931348623157e308",
        "9007199254740993",
        "12345678901234567890",
        "0.1",
        "0.30000000000000004",
        "123456789012345678901234567890",
        "1e-400",
        "100000000000000000000",
        "1e+21",
        "0.000001",
        "0.0000001",
        "999999999999999999999",
        "123.4500",
    ])
    .prop_map(str::to_owned);
    let general = (
        any::<bool>(),
        "(0|[1-9][0-9]{0,24})",
        prop::option::of("[0-9]{1,20}"),
        prop::option::of((
            prop::sample::select(vec!["e", "E"]),
            prop::sample::select(vec!["", "+", "-"]),
            0u32..400,
        )),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some((e, sign, n)) = exp {
                s.push_str(e);
                s.push_str(sign);
                s.push_str(&n.to_string());
            }
            s
        });
    let double = any::<f64>()
        .prop_filter("finite", |f| f.is_finite())
        .prop_map(|f| format!("{f:e}"));
    prop_oneof![special, general, double]
}

/// A JSON string literal: plain and non-ASCII characters, every escape,
/// `\u` escapes of any code unit (surrogates paired, lone or reversed).
fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 /]{1,4}",
        prop::sample::select(vec![
            "é",
            "☃",
            "😀",
            "\u{2028}",
            "\u{2029}",
            "\u{7f}",
            "\u{fffd}",
            "\u{10ffff}"
        ])
        .prop_map(str::to_owned),
        prop::sample::select(vec![
            "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"
        ])
        .prop_map(str::to_owned),
        any::<u16>().prop_map(|u| format!("\\u{u:04x}")),
        (0xD800u16..0xDC00, 0xDC00u16..0xE000).prop_map(|(h, l)| format!("\\u{h:04X}\\u{l:04x}")),
        (0u16..0x20).prop_map(|u| format!("\\u{u:04x}")),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|p| format!("\"{}\"", p.concat()))
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"0\"",
            "\"1\"",
            "\"2\"",
            "\"10\"",
            "\"01\"",
            "\"-1\"",
            "\"1.0\"",
            "\"4294967294\"",
            "\"4294967295\"",
            "\"4294967296\"",
            "\"a\"",
            "\"b\"",
            "\"__proto__\"",
            "\"\\u0031\"",
        ])
        .prop_map(str::to_owned),
        (0u32..100).prop_map(|n| format!("\"{n}\"")),
        string(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        number(),
        string(),
        prop::sample::select(vec!["true", "false", "null"]).prop_map(str::to_owned),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let parts: Vec<String> = items.into_iter().map(|(a, v, b)| a + &v + &b).collect();
                format!("[{}]", parts.join(","))
            }),
            prop::collection::vec((ws(), key(), ws(), ws(), inner, ws()), 0..7).prop_map(
                |members| {
                    let parts: Vec<String> = members
                        .into_iter()
                        .map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"))
                        .collect();
                    format!("{{{}}}", parts.join(","))
                }
            ),
        ]
    })
}

#[test]
fn compact_equals_node_json_stringify() {
    let cases = std::env::var("HOOKSEAL_NODE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let node = RefCell::new(Node::start());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let checked = Cell::new(0u32);
    let text = (ws(), value(), ws()).prop_map(|(a, v, b)| a + &v + &b);
    runner
        .run(&text, |text| {
            let theirs = node.borrow_mut().stringify(&text);
            let ours = json::compact(text.as_bytes()).ok();
            checked.set(checked.get() + 1);
            if ours != theirs {
                return Err(TestCaseError::fail(format!(
                    "{text:?}\n ours: {:?}\nnode: {:?}",
                    ours.map(|o| String::from_utf8_lossy(&o).into_owned()),
                    theirs.map(|o| String::from_utf8_lossy(&o).into_owned())
                )));
            }
            Ok(())
        })
        .unwrap();
    assert!(checked.get() >= cases, "{} cases checked", checked.get());
    let mut node = node.into_inner();
    // Node refuses what the parser refuses, too.
    for bad in [
        "{\"a\":1,}",
        "[01]",
        "\"\\x\"",
        "1.",
        "\u{feff}{}",
        "{'a':1}",
        "[1 2]",
    ] {
        assert_eq!(node.stringify(bad), None, "{bad}");
        assert!(json::compact(bad.as_bytes()).is_err(), "{bad}");
    }
}
