//! Differential: hookseal's `JSON.stringify(JSON.parse(text))` against
//! serde_json. Where serde_json reads the text, hookseal must too, and its
//! output must read (in serde_json) as the same value, numbers compared as
//! the doubles JSON.parse makes. Where serde_json refuses, hookseal must
//! refuse too, except for the two things JavaScript accepts and serde_json
//! does not: numbers beyond the double range (JSON.parse: Infinity,
//! written `null`) and lone surrogate escapes (kept, as JavaScript strings
//! keep them). The output is always idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const RAW_VALUE_TOKEN: &[u8] = b"$serde_json::private::RawValue";

/// Numbers as doubles, the rest as is.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// `data` with every `\uD800`-`\uDFFF` escape written `\u0000`
/// (escaped backslashes skipped).
fn without_surrogate_escapes(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut i = 0;
    while i < out.len() {
        if out[i] != b'\\' {
            i += 1;
            continue;
        }
        if out.get(i + 1) == Some(&b'u') && i + 6 <= out.len() {
            let hex = std::str::from_utf8(&out[i + 2..i + 6]).ok();
            if let Some(v) = hex.and_then(|h| u16::from_str_radix(h, 16).ok()) {
                if (0xD800..=0xDFFF).contains(&v) {
                    out[i + 2..i + 6].copy_from_slice(b"0000");
                }
            }
            i += 6;
        } else {
            i += 2;
        }
    }
    out
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let ours = hookseal::json::compact(data);
    let theirs = serde_json::from_slice::<Value>(data);
    match (&ours, &theirs) {
        (Ok(out), Ok(value)) => {
            let back: Value = serde_json::from_slice(out)
                .unwrap_or_else(|e| panic!("our output does not parse: {e}: {:?}", String::from_utf8_lossy(out)));
            assert!(same(&back, value), "value changed: {value} -> {back}");
            // Idempotent: compacting the output gives the output.
            assert_eq!(&hookseal::json::compact(out).unwrap(), out, "not idempotent");
        }
        (Err(e), Ok(value)) => {
            // Only the depth guard may refuse what serde_json reads.
            assert!(
                matches!(e, hookseal::JsonError::TooDeep) && depth(value) > hookseal::json::MAX_DEPTH,
                "refused what serde_json reads: {e} ({value})"
            );
        }
        (Ok(out), Err(e)) => {
            // Two things JSON.parse reads and serde_json refuses: numbers
            // beyond the double range, and lone surrogate escapes ("lone
            // leading surrogate", "unexpected end of hex escape"). With
            // every surrogate escape made `\u0000`, serde_json must read
            // the text, or refuse it only for a number's range; hookseal
            // must read it too.
            // serde_json's own magic key (its RawValue token) is refused
            // by serde_json only; any JSON parser reads it.
            if data
                .windows(RAW_VALUE_TOKEN.len())
                .any(|w| w == RAW_VALUE_TOKEN)
            {
                return;
            }
            let plain = without_surrogate_escapes(data);
            let again = serde_json::from_slice::<Value>(&plain);
            let explained = match &again {
                Ok(_) => true,
                Err(e2) => e2.to_string().contains("number out of range"),
            };
            assert!(
                explained && hookseal::json::compact(&plain).is_ok(),
                "accepted what serde_json refuses ({e}): {:?} -> {:?}",
                String::from_utf8_lossy(data),
                String::from_utf8_lossy(out)
            );
        }
        (Err(_), Err(_)) => {}
    }
});
