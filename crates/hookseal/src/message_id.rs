//! Message ids: the one rule for their shape, and how a receiver names an
//! inbound message.
//!
//! A message id travels in a header (`webhook-id`, `svix-id`, …), becomes an
//! event's primary key in the extension, and keys a receiver's replay guard.
//! Every one of those places accepts exactly what [`is_message_id`] accepts.

use crate::secret::content_id;

/// Longest message id, in bytes (the extension's `webhook_send` and event
/// ids take the same).
pub const MAX_MESSAGE_ID_LEN: usize = 256;

/// Whether `id` is a usable message id: 1 to [`MAX_MESSAGE_ID_LEN`] bytes of
/// printable ASCII (`!` to `~`: no space, no control character).
pub fn is_message_id(id: &str) -> bool {
    is_message_id_bytes(id.as_bytes())
}

/// [`is_message_id`] for a raw header value.
pub fn is_message_id_bytes(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN && id.iter().all(|b| (0x21..0x7f).contains(b))
}

/// The id a receiver files an inbound message under: the scheme's id header
/// when it holds a usable id, else the JSON body's top-level `"id"` string
/// when usable, else [`content_id`] of the body (stable across a sender's
/// retries of the same bytes).
pub fn inbound_id(id_header: Option<&str>, body: &[u8]) -> String {
    if let Some(id) = id_header.filter(|id| is_message_id(id)) {
        return id.to_owned();
    }
    match crate::json::string_field(body, "id") {
        Ok(id) if is_message_id(&id) => id,
        _ => content_id(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_rule() {
        assert!(is_message_id("msg_1"));
        assert!(is_message_id(&"a".repeat(MAX_MESSAGE_ID_LEN)));
        assert!(!is_message_id(&"a".repeat(MAX_MESSAGE_ID_LEN + 1)));
        assert!(!is_message_id(""));
        assert!(!is_message_id("a b"));
        assert!(!is_message_id("a\u{7f}"));
        assert!(!is_message_id("é"));
    }

    #[test]
    fn inbound_ids_prefer_the_header_then_the_body_then_the_content() {
        let body = br#"{"id":"evt_9","x":1}"#;
        assert_eq!(inbound_id(Some("msg_1"), body), "msg_1");
        assert_eq!(inbound_id(None, body), "evt_9");
        assert_eq!(inbound_id(Some("bad id"), body), "evt_9");
        assert_eq!(inbound_id(None, b"{}"), content_id(b"{}"));
        assert_eq!(
            inbound_id(None, br#"{"id":"a b"}"#),
            content_id(br#"{"id":"a b"}"#)
        );
        assert_eq!(inbound_id(None, br#"{"id":7}"#), content_id(br#"{"id":7}"#));
    }
}
