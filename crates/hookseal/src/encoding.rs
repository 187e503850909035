//! Byte encodings used on the wire: lowercase hex, standard base64 and
//! percent-encoding for query parameters.
//!
//! Decoders are strict: hex must be lowercase and base64 must be canonical
//! (padding and trailing bits), so that one MAC has exactly one textual form
//! and a flipped bit in a signature can never decode to the same bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// How a MAC is written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lowercase hexadecimal.
    Hex,
    /// Standard-alphabet base64 with padding.
    Base64,
}

impl Encoding {
    /// Writes `bytes` in this encoding.
    pub fn encode(self, bytes: &[u8]) -> String {
        let mut s = String::new();
        self.encode_into(bytes, &mut s);
        s
    }

    /// Appends `bytes` in this encoding to `out`.
    pub fn encode_into(self, bytes: &[u8], out: &mut String) {
        match self {
            Encoding::Hex => {
                out.reserve(bytes.len() * 2);
                for b in bytes {
                    out.push(HEX[(b >> 4) as usize] as char);
                    out.push(HEX[(b & 0x0f) as usize] as char);
                }
            }
            Encoding::Base64 => STANDARD.encode_string(bytes, out),
        }
    }

    /// Decodes `text` into `out`, returning the number of bytes written, or
    /// `None` when `text` is not canonical in this encoding or does not fit.
    pub(crate) fn decode_into(self, text: &[u8], out: &mut [u8]) -> Option<usize> {
        match self {
            Encoding::Hex => hex_decode_into(text, out),
            Encoding::Base64 => {
                // Quick length check keeps `decode_slice` from erroring late.
                if !text.len().is_multiple_of(4) || text.len() / 4 * 3 > out.len() + 2 {
                    return None;
                }
                STANDARD.decode_slice(text, out).ok()
            }
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    Encoding::Hex.encode(bytes)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// One hex digit's value and whether it is one (`0-9a-f`), computed
/// without a branch on the character: decoding a candidate signature takes
/// the same time whatever its digits, so `bench/ct.sh` can see the MAC
/// comparison alone.
fn hex_val_ct(c: u8) -> (u8, bool) {
    let digit = c.wrapping_sub(b'0');
    let lower = c.wrapping_sub(b'a');
    let is_digit = digit < 10;
    let is_lower = lower < 6;
    let v = (digit & (is_digit as u8).wrapping_neg())
        | (lower.wrapping_add(10) & (is_lower as u8).wrapping_neg());
    (v, is_digit | is_lower)
}

/// Strict lowercase hex decode into `out`; `None` on odd length, a character
/// outside `0-9a-f`, or input longer than `out`. The digits are checked all
/// together, after the loop (see [`hex_val_ct`]).
pub(crate) fn hex_decode_into(text: &[u8], out: &mut [u8]) -> Option<usize> {
    if !text.len().is_multiple_of(2) || text.len() / 2 > out.len() {
        return None;
    }
    let mut ok = true;
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let (hi, a) = hex_val_ct(pair[0]);
        let (lo, b) = hex_val_ct(pair[1]);
        out[i] = (hi << 4) | lo;
        ok &= a & b;
    }
    ok.then_some(text.len() / 2)
}

/// Strict lowercase hex decode into a new vector.
pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; text.len() / 2];
    let n = hex_decode_into(text.as_bytes(), &mut out)?;
    out.truncate(n);
    Some(out)
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut s = String::with_capacity(text.len() * 3 / 2);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            s.push(b as char);
        } else {
            s.push('%');
            s.push(HEX[(b >> 4) as usize].to_ascii_uppercase() as char);
            s.push(HEX[(b & 0x0f) as usize].to_ascii_uppercase() as char);
        }
    }
    s
}

/// The `(name, value)` pairs of a query string (the part after `?`; a
/// fragment is not read), as written: neither is percent-decoded. The one
/// reading of a query, for verifying a signature parameter and for refusing
/// to sign a URL that already holds one.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    let q = query.split_once('#').map_or(query, |(q, _)| q);
    q.split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Decodes `%XX` escapes (either case). A literal `+` stays `+`: base64
/// signatures contain it and senders that forget to escape it must still
/// verify. Returns `None` on a broken escape.
pub(crate) fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_val_any)?;
            let lo = b.get(i + 2).copied().and_then(hex_val_any)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_val_any(c: u8) -> Option<u8> {
    hex_val(c.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_strict_lowercase() {
        let mut out = [0u8; 4];
        assert_eq!(hex_decode_into(b"00ff", &mut out), Some(2));
        assert_eq!(out[..2], [0, 255]);
        assert_eq!(hex_decode_into(b"00FF", &mut out), None);
        assert_eq!(hex_decode_into(b"0", &mut out), None);
        assert_eq!(hex_decode_into(b"0000000000", &mut out), None);
        assert_eq!(hex_decode("zz"), None);
    }

    #[test]
    fn base64_rejects_non_canonical_trailing_bits() {
        let mut out = [0u8; 64];
        // "AB==" has non-zero trailing bits; canonical is "AA==".
        assert_eq!(Encoding::Base64.decode_into(b"AA==", &mut out), Some(1));
        assert_eq!(Encoding::Base64.decode_into(b"AB==", &mut out), None);
        assert_eq!(Encoding::Base64.decode_into(b"AA=", &mut out), None);
    }

    #[test]
    fn percent_round_trip() {
        let sig = "aKkeJ74LbbSAvFtBu+RvS8nl4Lbx1GEdwfiOywGNKaY=";
        let enc = percent_encode(sig);
        assert_eq!(enc, "aKkeJ74LbbSAvFtBu%2BRvS8nl4Lbx1GEdwfiOywGNKaY%3D");
        assert_eq!(percent_decode(&enc).unwrap(), sig.as_bytes());
        assert_eq!(percent_decode(sig).unwrap(), sig.as_bytes());
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
    }
}
