//! Compact JSON re-serialization, as `JSON.stringify(JSON.parse(body))` does
//! it, with one deliberate difference: numbers keep the text they arrived
//! with (so `1.50` and `12345678901234567890` survive unchanged).
//!
//! Object keys keep their first-seen order; a repeated key keeps its first
//! position and its last value, as in JavaScript. Strings are written with the
//! JSON-mandatory escapes only and raw UTF-8 for everything else. Nesting is
//! limited to [`MAX_DEPTH`] so hostile input cannot exhaust the stack.

use thiserror::Error;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 128;

/// Why a body could not be read as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonError {
    /// The body is not well-formed JSON.
    #[error("body is not valid JSON (at byte {offset})")]
    Syntax {
        /// Byte offset where parsing stopped.
        offset: usize,
    },
    /// Arrays and objects nest deeper than [`MAX_DEPTH`].
    #[error("body nests JSON deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The body is JSON but not an object, or lacks the named string field.
    #[error("body has no top-level string field `{field}`")]
    MissingField {
        /// The field that was looked for.
        field: String,
    },
}

enum Node<'a> {
    Literal(&'a [u8]),
    Str(String),
    Arr(Vec<Node<'a>>),
    Obj(Vec<(String, Node<'a>)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self) -> JsonError {
        JsonError::Syntax { offset: self.i }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), JsonError> {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
                self.i += 1;
                let mut fields: Vec<(String, Node<'a>)> = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Node::Obj(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    let v = self.value(depth + 1)?;
                    match fields.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = v,
                        None => fields.push((key, v)),
                    }
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Node::Obj(fields));
                        }
                        _ => return Err(self.err()),
                    }
                }
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(JsonError::TooDeep);
                }
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Node::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Node::Arr(items));
                        }
                        _ => return Err(self.err()),
                    }
                }
            }
            Some(b'"') => Ok(Node::Str(self.string()?)),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err()),
        }
    }

    fn word(&mut self, w: &'static [u8]) -> Result<Node<'a>, JsonError> {
        if self.s[self.i..].starts_with(w) {
            self.i += w.len();
            Ok(Node::Literal(w))
        } else {
            Err(self.err())
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Node<'a>, JsonError> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err()),
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err());
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err());
            }
        }
        Ok(Node::Literal(&self.s[start..self.i]))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let h = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err())?;
        let mut v = 0u32;
        for &c in h {
            let d = (c as char).to_digit(16).ok_or_else(|| self.err())?;
            v = v * 16 + d;
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        self.eat(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Copy a run of plain bytes at once.
            let run = self.s[self.i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or(JsonError::Syntax {
                    offset: self.s.len(),
                })?;
            out.extend_from_slice(&self.s[self.i..self.i + run]);
            self.i += run;
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| self.err());
                }
                b'\\' => {
                    self.i += 1;
                    let c = *self.s.get(self.i).ok_or_else(|| self.err())?;
                    self.i += 1;
                    let ch = match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                self.eat(b'\\')?;
                                self.eat(b'u')?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err());
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or_else(|| self.err())?
                        }
                        _ => return Err(self.err()),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => return Err(self.err()), // raw control character
            }
        }
    }
}

fn parse(input: &[u8]) -> Result<Node<'_>, JsonError> {
    let mut p = Parser { s: input, i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != input.len() {
        return Err(p.err());
    }
    Ok(v)
}

/// Appends `s` as a JSON string (quotes, mandatory escapes only, UTF-8
/// kept), exactly as [`compact`] writes strings.
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    write_str(out, s)
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn write(out: &mut Vec<u8>, n: &Node<'_>) {
    match n {
        Node::Literal(t) => out.extend_from_slice(t),
        Node::Str(s) => write_str(out, s),
        Node::Arr(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, v);
            }
            out.push(b']');
        }
        Node::Obj(fields) => {
            out.push(b'{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, k);
                out.push(b':');
                write(out, v);
            }
            out.push(b'}');
        }
    }
}

/// `JSON.stringify(JSON.parse(input))`, numbers kept as written.
pub fn compact(input: &[u8]) -> Result<Vec<u8>, JsonError> {
    let node = parse(input)?;
    let mut out = Vec::with_capacity(input.len());
    write(&mut out, &node);
    Ok(out)
}

/// Compact JSON of a new object holding only `fields` of the top-level object
/// in `input`, in the order `fields` lists them; absent fields are left out,
/// as `JSON.stringify({event, data})` leaves out `undefined`.
pub fn compact_fields(input: &[u8], fields: &[String]) -> Result<Vec<u8>, JsonError> {
    let Node::Obj(obj) = parse(input)? else {
        return Err(JsonError::Syntax { offset: 0 });
    };
    let mut out = Vec::with_capacity(input.len());
    out.push(b'{');
    let mut first = true;
    for f in fields {
        if let Some((k, v)) = obj.iter().find(|(k, _)| k == f) {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(&mut out, k);
            out.push(b':');
            write(&mut out, v);
        }
    }
    out.push(b'}');
    Ok(out)
}

/// The value of the top-level string field `field` of the JSON object `input`.
pub fn string_field(input: &[u8], field: &str) -> Result<String, JsonError> {
    let missing = || JsonError::MissingField {
        field: field.to_owned(),
    };
    let Node::Obj(obj) = parse(input)? else {
        return Err(missing());
    };
    obj.into_iter()
        .find(|(k, _)| k == field)
        .and_then(|(_, v)| match v {
            Node::Str(s) => Some(s),
            _ => None,
        })
        .ok_or_else(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        String::from_utf8(compact(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn keeps_order_numbers_and_utf8() {
        assert_eq!(
            c("{ \"b\" : 1.50, \"a\": [ 1e3 , -0, 12345678901234567890 ] }"),
            r#"{"b":1.50,"a":[1e3,-0,12345678901234567890]}"#
        );
        assert_eq!(
            c(r#""caf\u00e9 \u2603 \/ \ud83d\ude00""#),
            "\"café ☃ / 😀\""
        );
        assert_eq!(c("\"a\\u0001\\n\\\"\""), "\"a\\u0001\\n\\\"\"");
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        assert_eq!(c(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "\"\u{1}\"",
            "tru",
            "1 2",
            "\"\\ud800\"",
            "\"\\x\"",
            "{\"a\" 1}",
            "\u{feff}{}",
        ] {
            assert!(compact(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(compact(deep.as_bytes()), Err(JsonError::TooDeep));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(compact(ok.as_bytes()).is_ok());
        assert!(compact(&[b'"', 0xff, b'"']).is_err());
    }

    #[test]
    fn fields_and_projection() {
        let body = br#"{"x":0,"data":{"k":1},"event":"e"}"#;
        let p = compact_fields(body, &["event".into(), "data".into()]).unwrap();
        assert_eq!(p, br#"{"event":"e","data":{"k":1}}"#);
        assert_eq!(string_field(body, "event").unwrap(), "e");
        assert!(matches!(
            string_field(body, "x"),
            Err(JsonError::MissingField { .. })
        ));
        assert!(matches!(
            string_field(b"[1]", "x"),
            Err(JsonError::MissingField { .. })
        ));
    }
}
