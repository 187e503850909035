//! Compact JSON exactly as ECMAScript's `JSON.stringify(JSON.parse(text))`
//! writes it: the form the `x-signature` and `fincra` reference senders sign
//! and their reference receivers re-create before comparing.
//!
//! - **Numbers** become IEEE-754 doubles (correctly rounded, as `JSON.parse`
//!   does) written by ECMAScript's `Number::toString` through `ryu-js`:
//!   `1.0` → `1`, `2.50` → `2.5`, `1e21` → `1e+21`, `-0` → `0`, integers past
//!   2^53 rounded, overflow (`1e400`) → `null`.
//! - **Object keys** that are array indices (canonical decimal integers below
//!   2^32 − 1) come first in ascending numeric order, then the others in
//!   order of first appearance; a repeated key keeps its first position and
//!   its last value.
//! - **Strings** escape `"`, `\` and control characters (`\b \f \n \r \t`,
//!   others `\u00xx`) and lone surrogates (`\udxxx`, as well-formed
//!   `JSON.stringify` does); everything else is written as UTF-8.
//!
//! Input is strict RFC 8259 JSON in UTF-8 (no BOM, no comments, no trailing
//! commas), nested at most [`MAX_DEPTH`] levels so hostile input cannot
//! exhaust the stack. Strings are held as WTF-8 so that lone surrogates
//! written as `\u` escapes survive, as they do in a JavaScript string.

use std::borrow::Cow;
use std::collections::HashMap;

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

/// A string's content, escapes decoded, in WTF-8 (UTF-8 that may also hold
/// lone surrogates); borrowed from the input when it had no escape.
type Text<'a> = Cow<'a, [u8]>;

enum Node<'a> {
    /// `true`, `false` or `null`.
    Literal(&'static [u8]),
    /// A number's text as it arrived (grammar checked); converted on output.
    Number(&'a [u8]),
    Str(Text<'a>),
    Arr(Vec<Node<'a>>),
    /// Members in output order: duplicates resolved, index keys first.
    Obj(Vec<(Text<'a>, Node<'a>)>),
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
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Node::Str(self.string()?)),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.i += 1;
        let mut members = Vec::with_capacity(4);
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Node::Obj(members));
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            members.push((key, self.value(depth + 1)?));
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Node::Obj(js_member_order(members)));
                }
                _ => return Err(self.err()),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        self.i += 1;
        let mut items = Vec::with_capacity(4);
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
        Ok(Node::Number(&self.s[start..self.i]))
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

    /// A string: borrowed when it has no escape, else decoded into WTF-8.
    fn string(&mut self) -> Result<Text<'a>, JsonError> {
        self.eat(b'"')?;
        let mut out: Option<Vec<u8>> = None;
        loop {
            // A run of plain bytes, checked as UTF-8 in one go.
            let start = self.i;
            let run = self.s[start..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or(JsonError::Syntax {
                    offset: self.s.len(),
                })?;
            let plain = &self.s[start..start + run];
            if let Err(e) = std::str::from_utf8(plain) {
                return Err(JsonError::Syntax {
                    offset: start + e.valid_up_to(),
                });
            }
            self.i += run;
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(match out {
                        None => Cow::Borrowed(plain),
                        Some(mut buf) => {
                            buf.extend_from_slice(plain);
                            Cow::Owned(buf)
                        }
                    });
                }
                b'\\' => {
                    let buf = out.get_or_insert_with(Vec::new);
                    buf.extend_from_slice(plain);
                    self.i += 1;
                    let c = *self.s.get(self.i).ok_or_else(|| self.err())?;
                    self.i += 1;
                    let byte = match c {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let code = self.unicode_escape()?;
                            push_wtf8(buf, code);
                            continue;
                        }
                        _ => return Err(self.err()),
                    };
                    buf.push(byte);
                }
                _ => return Err(self.err()), // raw control character
            }
        }
    }

    /// The code point of a `\uXXXX` escape (the `\u` already read), joining
    /// a surrogate pair written as two escapes; a lone surrogate is kept as
    /// itself, as `JSON.parse` keeps it.
    fn unicode_escape(&mut self) -> Result<u32, JsonError> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                return Ok(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
            }
            self.i = save; // not a pair: the next escape stands alone
        }
        Ok(hi)
    }
}

/// Appends code point `c` (a surrogate included) in WTF-8.
fn push_wtf8(out: &mut Vec<u8>, c: u32) {
    match char::from_u32(c) {
        Some(ch) => out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
        // A lone surrogate (U+D800..U+DFFF): the three-byte form UTF-8
        // forbids, which valid input bytes can never produce.
        None => out.extend_from_slice(&[
            0xE0 | (c >> 12) as u8,
            0x80 | ((c >> 6) & 0x3F) as u8,
            0x80 | (c & 0x3F) as u8,
        ]),
    }
}

/// The numeric value of an array-index key: a canonical decimal integer
/// below 2^32 − 1 (`"0"`, `"7"`, `"4294967294"`; not `"01"` or `"-1"`).
fn array_index(key: &[u8]) -> Option<u32> {
    match key {
        [b'0'] => Some(0),
        [b'1'..=b'9', rest @ ..] if rest.len() <= 9 && rest.iter().all(u8::is_ascii_digit) => {
            let v = key.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
            u32::try_from(v).ok().filter(|&v| v < u32::MAX)
        }
        _ => None,
    }
}

/// Members as a JavaScript object holds them after `JSON.parse`: a repeated
/// key keeps its first position and its last value; array-index keys come
/// first in ascending order, then the rest in order of first appearance.
fn js_member_order<'a>(members: Vec<(Text<'a>, Node<'a>)>) -> Vec<(Text<'a>, Node<'a>)> {
    let members = dedupe(members);
    if !members.iter().any(|(k, _)| array_index(k).is_some()) {
        return members;
    }
    let (mut indices, rest): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|(k, _)| array_index(k).is_some());
    indices.sort_by_key(|(k, _)| array_index(k));
    indices.extend(rest);
    indices
}

/// Resolves repeated keys: first position, last value. Small objects are
/// searched linearly; larger ones through a map, so a hostile object of
/// many keys costs linear time.
fn dedupe<'a>(members: Vec<(Text<'a>, Node<'a>)>) -> Vec<(Text<'a>, Node<'a>)> {
    let n = members.len();
    // The common case, checked without allocating: a small object with no
    // repeated key.
    if n <= 16 && (1..n).all(|i| members[..i].iter().all(|(k, _)| *k != members[i].0)) {
        return members;
    }
    // first[i]: index of the first member with member i's key.
    let first: Vec<usize> = if n <= 16 {
        (0..n)
            .map(|i| (0..i).find(|&j| members[j].0 == members[i].0).unwrap_or(i))
            .collect()
    } else {
        let mut seen: HashMap<&[u8], usize> = HashMap::with_capacity(n);
        (0..n)
            .map(|i| *seen.entry(members[i].0.as_ref()).or_insert(i))
            .collect()
    };
    if first.iter().enumerate().all(|(i, &f)| f == i) {
        return members;
    }
    let mut slots: Vec<Option<(Text<'a>, Node<'a>)>> = Vec::with_capacity(n);
    for (i, (k, v)) in members.into_iter().enumerate() {
        if first[i] == i {
            slots.push(Some((k, v)));
        } else {
            slots.push(None);
            if let Some((_, slot)) = slots[first[i]].as_mut() {
                *slot = v; // the later value wins
            }
        }
    }
    slots.into_iter().flatten().collect()
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

/// Appends `s` as a JSON string, escaped as `JSON.stringify` escapes it.
pub fn push_string(out: &mut Vec<u8>, s: &str) {
    write_str(out, s.as_bytes())
}

/// Writes WTF-8 `s` as a JSON string.
fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let run = s[i..]
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\' || b == 0xED)
            .unwrap_or(s.len() - i);
        out.extend_from_slice(&s[i..i + run]);
        i += run;
        let Some(&b) = s.get(i) else { break };
        i += 1;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0xED => match s.get(i..i + 2) {
                // ED A0..BF xx: a lone surrogate, written as `\udxxx`.
                Some(&[b1, b2]) if b1 >= 0xA0 => {
                    let unit = 0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F);
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[((unit >> shift) & 15) as usize]);
                    }
                    i += 2;
                }
                _ => out.push(0xED), // the lead byte of U+D000..U+D7FF
            },
            c => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
        }
    }
    out.push(b'"');
}

/// Writes a number's text as `Number::prototype.toString` writes its value.
fn write_number(out: &mut Vec<u8>, text: &[u8]) {
    // Fast path: an integer of at most 15 digits is an exact double whose
    // shortest form is the text itself (JSON forbids leading zeros); `-0`
    // is the one exception.
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        if digits == b"0" {
            out.push(b'0');
        } else {
            out.extend_from_slice(text);
        }
        return;
    }
    // The parser checked the grammar, which Rust's float parser accepts;
    // its result is correctly rounded, as ECMAScript requires.
    let value = std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    if value.is_finite() {
        out.extend_from_slice(ryu_js::Buffer::new().format_finite(value).as_bytes());
    } else {
        out.extend_from_slice(b"null"); // JSON.stringify(Infinity)
    }
}

fn write(out: &mut Vec<u8>, n: &Node<'_>) {
    match n {
        Node::Literal(t) => out.extend_from_slice(t),
        Node::Number(t) => write_number(out, t),
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
        Node::Obj(members) => write_members(out, members.iter().map(|(k, v)| (&k[..], v))),
    }
}

fn write_members<'n, 'a: 'n>(
    out: &mut Vec<u8>,
    members: impl Iterator<Item = (&'n [u8], &'n Node<'a>)>,
) {
    out.push(b'{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write(out, v);
    }
    out.push(b'}');
}

/// `JSON.stringify(JSON.parse(input))`.
pub fn compact(input: &[u8]) -> Result<Vec<u8>, JsonError> {
    reserialize(input, None).map(|r| r.compact)
}

/// Compact JSON of a new object holding only `fields` of the top-level object
/// in `input`: `JSON.stringify({event, data})` for `["event", "data"]`.
/// Absent fields are left out, as `JSON.stringify` leaves out `undefined`.
pub fn compact_fields(input: &[u8], fields: &[String]) -> Result<Vec<u8>, JsonError> {
    let Node::Obj(members) = parse(input)? else {
        return Err(JsonError::Syntax { offset: 0 });
    };
    Ok(projection(&members, fields).unwrap_or_else(|| b"{}".to_vec()))
}

/// The compact JSON of `fields` of an object's members, in `fields` order
/// (array-index names first, as in any JavaScript object); `None` when the
/// object has none of them.
fn projection(members: &[(Text<'_>, Node<'_>)], fields: &[String]) -> Option<Vec<u8>> {
    let mut picked: Vec<(&[u8], &Node<'_>)> = fields
        .iter()
        .filter_map(|f| {
            members
                .iter()
                .find(|(k, _)| &k[..] == f.as_bytes())
                .map(|(k, v)| (&k[..], v))
        })
        .collect();
    if picked.is_empty() {
        return None;
    }
    picked.sort_by_key(|(k, _)| array_index(k).map_or(u64::MAX, u64::from));
    let mut out = Vec::new();
    write_members(&mut out, picked.into_iter());
    Some(out)
}

/// `input` without whitespace outside strings, every token kept as written
/// (numbers keep their text: `2.50` and 30-digit integers survive). For JSON
/// that is already known to be well-formed, such as PostgreSQL's `jsonb`
/// output; nothing is validated. Not the form re-serializing schemes sign:
/// that is [`compact`].
pub fn minify(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in input {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

/// A JSON body in the forms a re-serializing scheme signs and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserialized {
    /// `JSON.stringify(JSON.parse(body))`.
    pub compact: Vec<u8>,
    /// Compact JSON of the selected top-level fields, when fields were asked
    /// for and the body is an object holding at least one of them.
    pub fields: Option<Vec<u8>>,
}

impl Reserialized {
    /// The text a sender signs: the selected fields when there are any (the
    /// payload `{event, data}` of a `fincra` body), else the compact body.
    pub fn signed_text(&self) -> &[u8] {
        self.fields.as_deref().unwrap_or(&self.compact)
    }
}

/// Parses `input` once and writes its compact form and, when `fields` is
/// given, the compact form of those top-level fields.
pub fn reserialize(input: &[u8], fields: Option<&[String]>) -> Result<Reserialized, JsonError> {
    let node = parse(input)?;
    let mut compact = Vec::with_capacity(input.len());
    write(&mut compact, &node);
    let fields = match (&node, fields) {
        (Node::Obj(members), Some(f)) => projection(members, f),
        _ => None,
    };
    Ok(Reserialized { compact, fields })
}

/// The value of the top-level string field `field` of the JSON object
/// `input`. A lone surrogate in it reads as U+FFFD, as Node's UTF-8
/// encoder writes it.
pub fn string_field(input: &[u8], field: &str) -> Result<String, JsonError> {
    let missing = || JsonError::MissingField {
        field: field.to_owned(),
    };
    let Node::Obj(members) = parse(input)? else {
        return Err(missing());
    };
    members
        .into_iter()
        .find(|(k, _)| &k[..] == field.as_bytes())
        .and_then(|(_, v)| match v {
            Node::Str(s) => Some(wtf8_to_string(&s)),
            _ => None,
        })
        .ok_or_else(missing)
}

/// WTF-8 to a `String`, each lone surrogate replaced by U+FFFD.
fn wtf8_to_string(s: &[u8]) -> String {
    match std::str::from_utf8(s) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s;
            while !rest.is_empty() {
                match std::str::from_utf8(rest) {
                    Ok(text) => {
                        out.push_str(text);
                        break;
                    }
                    Err(e) => {
                        let (ok, bad) = rest.split_at(e.valid_up_to());
                        out.push_str(std::str::from_utf8(ok).unwrap_or_default());
                        out.push(char::REPLACEMENT_CHARACTER);
                        // Only surrogates (three bytes each) are invalid here.
                        rest = bad.get(3..).unwrap_or_default();
                    }
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        String::from_utf8(compact(s.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn numbers_as_javascript_writes_them() {
        assert_eq!(
            c("{ \"b\" : 1.50, \"a\": [ 1e3 , -0, 12345678901234567890, -0.0, 1E-7 ] }"),
            r#"{"b":1.5,"a":[1000,0,12345678901234567000,0,1e-7]}"#
        );
        assert_eq!(
            c("[1e21, 1e400, -1e400, 5e-324, 123456789012345]"),
            "[1e+21,null,null,5e-324,123456789012345]"
        );
        assert_eq!(
            c("[9007199254740993, 0.1, 100, -7]"),
            "[9007199254740992,0.1,100,-7]"
        );
    }

    #[test]
    fn strings_escape_as_json_stringify() {
        assert_eq!(
            c(r#""caf\u00e9 \u2603 \/ \ud83d\ude00""#),
            "\"café ☃ / 😀\""
        );
        assert_eq!(c("\"a\\u0001\\n\\\"\\u007f\""), "\"a\\u0001\\n\\\"\u{7f}\"");
        assert_eq!(
            c(r#""\ud800 \uDC00x \ud800\ud800""#),
            r#""\ud800 \udc00x \ud800\ud800""#
        );
        assert_eq!(c("\"\u{d7ff}\u{e000}\""), "\"\u{d7ff}\u{e000}\"");
    }

    #[test]
    fn keys_in_javascript_order() {
        assert_eq!(c(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        assert_eq!(
            c(r#"{"b":1,"2":2,"1":3,"a":4,"10":5,"01":6,"4294967295":7,"4294967294":8}"#),
            r#"{"1":3,"2":2,"10":5,"4294967294":8,"b":1,"a":4,"01":6,"4294967295":7}"#
        );
        let many: String = (0..40).map(|i| format!("\"k{}\":{i},", i % 20)).collect();
        let out = c(&format!("{{{}\"z\":0}}", many));
        assert!(out.starts_with(r#"{"k0":20,"k1":21,"#), "{out}");
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
            "\"\\x\"",
            "\"\\u12\"",
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
        assert!(compact(&[b'"', 0xed, 0xa0, 0x80, b'"']).is_err()); // raw surrogate bytes
    }

    #[test]
    fn minify_keeps_tokens() {
        let jsonb =
            br#"{"a": 2.50, "b": [1, 123456789012345678901234567890], "s": "x \" y, z: \\"}"#;
        assert_eq!(
            minify(jsonb),
            br#"{"a":2.50,"b":[1,123456789012345678901234567890],"s":"x \" y, z: \\"}"#
        );
    }

    #[test]
    fn fields_and_projection() {
        let body = br#"{"x":0,"data":{"k":1.0},"event":"e"}"#;
        let fields = ["event".to_owned(), "data".to_owned()];
        let p = compact_fields(body, &fields).unwrap();
        assert_eq!(p, br#"{"event":"e","data":{"k":1}}"#);
        let r = reserialize(body, Some(&fields)).unwrap();
        assert_eq!(r.compact, br#"{"x":0,"data":{"k":1},"event":"e"}"#);
        assert_eq!(r.signed_text(), &p[..]);
        let plain = reserialize(br#"{"amount":1.0}"#, Some(&fields)).unwrap();
        assert_eq!(plain.signed_text(), br#"{"amount":1}"#);
        assert_eq!(plain.fields, None);
        assert_eq!(string_field(body, "event").unwrap(), "e");
        assert_eq!(
            string_field(br#"{"e":"a\ud800b"}"#, "e").unwrap(),
            "a\u{fffd}b"
        );
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
