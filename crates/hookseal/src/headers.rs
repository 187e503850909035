//! Reading request headers from whatever map the caller has.

/// A header name prepared once: its lowercase text and, with the `http`
/// feature, the parsed `http::HeaderName`, so a lookup in an
/// `http::HeaderMap` does not re-parse the name on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderKey {
    lower: String,
    #[cfg(feature = "http")]
    http: Option<http::HeaderName>,
}

impl HeaderKey {
    /// Prepares `name` (any case).
    pub fn new(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        HeaderKey {
            #[cfg(feature = "http")]
            http: http::HeaderName::from_bytes(lower.as_bytes()).ok(),
            lower,
        }
    }

    /// The name in lowercase.
    pub fn as_str(&self) -> &str {
        &self.lower
    }
}

/// Anything request headers can be read from.
///
/// Implemented for slices, arrays and vectors of `(name, value)` pairs and,
/// with the `http` feature, for `http::HeaderMap`. Names match ASCII
/// case-insensitively; values are raw bytes (a value that is not UTF-8 is a
/// malformed header, not a panic).
pub trait HeaderSource {
    /// Calls `f` with every value of header `name`, in order.
    fn each_value<'a>(&'a self, name: &HeaderKey, f: &mut dyn FnMut(&'a [u8]));
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderSource for [(K, V)] {
    fn each_value<'a>(&'a self, name: &HeaderKey, f: &mut dyn FnMut(&'a [u8])) {
        for (k, v) in self {
            if k.as_ref().eq_ignore_ascii_case(name.as_str()) {
                f(v.as_ref());
            }
        }
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> HeaderSource for Vec<(K, V)> {
    fn each_value<'a>(&'a self, name: &HeaderKey, f: &mut dyn FnMut(&'a [u8])) {
        self.as_slice().each_value(name, f)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> HeaderSource for [(K, V); N] {
    fn each_value<'a>(&'a self, name: &HeaderKey, f: &mut dyn FnMut(&'a [u8])) {
        self.as_slice().each_value(name, f)
    }
}

#[cfg(feature = "http")]
impl HeaderSource for http::HeaderMap {
    fn each_value<'a>(&'a self, name: &HeaderKey, f: &mut dyn FnMut(&'a [u8])) {
        if let Some(n) = &name.http {
            for v in self.get_all(n) {
                f(v.as_bytes());
            }
        }
    }
}

/// A header value without its surrounding optional whitespace (spaces and
/// tabs, RFC 9110 §5.5): the one trimming rule every adapter gets, since the
/// verifier applies it to every value it reads from a [`HeaderSource`].
pub fn trim_header_value(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// Calls `f` with every value of header `name`, trimmed. A value over
/// [`crate::MAX_VALUE_LEN`] is passed as it arrived, so the length rule
/// judges what was sent (8 KiB of padding is not a value).
pub(crate) fn each_trimmed<'a, H: HeaderSource + ?Sized>(
    h: &'a H,
    name: &HeaderKey,
    f: &mut dyn FnMut(&'a [u8]),
) {
    h.each_value(name, &mut |v| {
        f(if v.len() > crate::MAX_VALUE_LEN {
            v
        } else {
            trim_header_value(v)
        })
    });
}

/// What a single-valued header lookup found.
pub(crate) enum One<'a> {
    Absent,
    Present(&'a [u8]),
    Repeated,
}

pub(crate) fn one<'a, H: HeaderSource + ?Sized>(h: &'a H, name: &HeaderKey) -> One<'a> {
    let mut found = One::Absent;
    each_trimmed(h, name, &mut |v| {
        found = match found {
            One::Absent => One::Present(v),
            _ => One::Repeated,
        }
    });
    found
}

/// Whether `name` is a header (or parameter) name as schemes write them:
/// non-empty, letters, digits, `-`, `_`, `.`. Scheme validation, the signer
/// and the verifier of named headers all ask this.
pub(crate) fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}
