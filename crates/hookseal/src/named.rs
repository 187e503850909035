//! Signatures over named headers: the list item in which a sender names the
//! headers it signed, and how those headers are written into the signed
//! message (`{header_names}` and `{headers}`).
//!
//! Two real renderings, both data:
//! - hookseal's default, `name:value` and a line feed per header
//!   (`tests/vectors/named-headers.json`);
//! - Hook0's v1: the names joined by a space, then the values alone joined
//!   by `.` (`"each": "{value}", "join": "."`, `tests/vectors/hook0.json`).

use serde::{Deserialize, Serialize};

use crate::headers::trim_header_value;
use crate::scheme::{tokens, SchemeError, Token};

/// The list item that names the headers a template signs, and how they are
/// written: `h=x-request-id;content-type` names those two headers, in that
/// order. In a template, `{header_names}` is the names (lower case) joined
/// by `separator`, and `{headers}` is each header written as `each`, joined
/// by `join` (by default `x-request-id:<value>\ncontent-type:<value>\n`).
/// A value is the header as received, surrounding whitespace removed. A
/// named header that did not arrive (or arrived twice) refuses the request
/// with its own reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHeaders {
    /// The item's tag, e.g. `h`.
    pub tag: String,
    /// Between the names, e.g. `;` or a space (not the list separator).
    pub separator: String,
    /// How one header is written in `{headers}`: `{name}` (lower case) and
    /// `{value}`; `{{`/`}}` are braces. Default `{name}:{value}` and a line
    /// feed.
    #[serde(default, skip_serializing_if = "HeaderItem::is_default")]
    pub each: HeaderItem,
    /// Between two headers in `{headers}`; default nothing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub join: String,
}

/// How one named header is written (see [`SignedHeaders::each`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HeaderItem {
    text: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Name,
    Value,
}

const DEFAULT_ITEM: &str = "{name}:{value}\n";

impl HeaderItem {
    /// Parses an item: literals, `{name}`, and `{value}` exactly once.
    pub fn parse(text: &str) -> Result<Self, SchemeError> {
        let bad = |why: &str| SchemeError::Template(format!("{why} in {text:?}"));
        let pieces = tokens(text)
            .map_err(bad)?
            .into_iter()
            .map(|t| match t {
                Token::Literal(s) => Ok(Piece::Literal(s)),
                Token::Placeholder(p) if p == "name" => Ok(Piece::Name),
                Token::Placeholder(p) if p == "value" => Ok(Piece::Value),
                Token::Placeholder(p) => Err(bad(&format!(
                    "unknown placeholder `{{{p}}}` (a signed header is written with `{{name}}` and `{{value}}`)"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if pieces.iter().filter(|p| **p == Piece::Value).count() != 1 {
            return Err(bad(
                "a signed header is written with `{value}` exactly once",
            ));
        }
        Ok(HeaderItem {
            text: text.to_owned(),
            pieces,
        })
    }

    fn is_default(&self) -> bool {
        self.text == DEFAULT_ITEM
    }

    fn write(&self, out: &mut Vec<u8>, lower_name: &str, value: &[u8]) {
        for p in &self.pieces {
            match p {
                Piece::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Piece::Name => out.extend_from_slice(lower_name.as_bytes()),
                Piece::Value => out.extend_from_slice(trim_header_value(value)),
            }
        }
    }
}

impl Default for HeaderItem {
    fn default() -> Self {
        // The default is a constant that parses (tests::default_item_parses).
        HeaderItem::parse(DEFAULT_ITEM).unwrap_or(HeaderItem {
            text: DEFAULT_ITEM.to_owned(),
            pieces: Vec::new(),
        })
    }
}

impl TryFrom<String> for HeaderItem {
    type Error = SchemeError;
    fn try_from(s: String) -> Result<Self, SchemeError> {
        HeaderItem::parse(&s)
    }
}

impl From<HeaderItem> for String {
    fn from(t: HeaderItem) -> String {
        t.text
    }
}

/// What a template's `{header_names}` and `{headers}` stand for.
#[derive(Debug, Default)]
pub(crate) struct Rendered {
    /// `{header_names}`: the names, lower case, joined by the separator.
    pub names: String,
    /// `{headers}`: each header as `each`, joined by `join`.
    pub text: Vec<u8>,
}

impl SignedHeaders {
    /// The two renderings of `headers` (name, value), in the order given.
    pub(crate) fn render<'a, I>(&self, headers: I) -> Rendered
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let mut r = Rendered::default();
        for (i, (name, value)) in headers.into_iter().enumerate() {
            let lower = name.to_ascii_lowercase();
            if i > 0 {
                r.names.push_str(&self.separator);
                r.text.extend_from_slice(self.join.as_bytes());
            }
            r.names.push_str(&lower);
            self.each.write(&mut r.text, &lower, value);
        }
        r
    }

    /// The separator can be read back: non-empty, made of characters that
    /// no header name holds, and apart from the list separator.
    pub(crate) fn check(&self, list_separator: Option<&str>) -> Result<(), &'static str> {
        let separates = |sep: &str| sep.bytes().all(|b| b" \"(),:;<>?@[\\]{}".contains(&b));
        if self.separator.is_empty() || !separates(&self.separator) {
            return Err("`signed_headers.separator` must be made of space or \"(),:;<>?@[\\]{}");
        }
        if let Some(list) = list_separator {
            if self.separator.contains(list) || list.contains(self.separator.as_str()) {
                return Err("`signed_headers.separator` and `list_separator` must not overlap");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_item_parses() {
        assert_eq!(
            HeaderItem::parse(DEFAULT_ITEM).unwrap(),
            HeaderItem::default()
        );
        assert!(!HeaderItem::default().pieces.is_empty());
    }

    #[test]
    fn items_need_one_value_and_know_only_name_and_value() {
        for bad in [
            "{name}",
            "{value}{value}",
            "{id}{value}",
            "{value",
            "}{value}",
        ] {
            assert!(HeaderItem::parse(bad).is_err(), "{bad}");
        }
        assert!(HeaderItem::parse("{{{name}}}={value}").is_ok());
    }

    #[test]
    fn both_renderings() {
        let h = |each: &str, join: &str, sep: &str| SignedHeaders {
            tag: "h".into(),
            separator: sep.into(),
            each: HeaderItem::parse(each).unwrap(),
            join: join.into(),
        };
        let given = [("X-Event-Id", &b" a1 "[..]), ("x-event-type", b"t.b")];
        let r = h(DEFAULT_ITEM, "", ";").render(given);
        assert_eq!(r.names, "x-event-id;x-event-type");
        assert_eq!(r.text, b"x-event-id:a1\nx-event-type:t.b\n");
        let r = h("{value}", ".", " ").render(given);
        assert_eq!(r.names, "x-event-id x-event-type");
        assert_eq!(r.text, b"a1.t.b");
    }
}
