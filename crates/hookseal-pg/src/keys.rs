//! The server keyring, built from the settings and cached per session.

use std::cell::RefCell;

use hookseal_core::{Keyring, ServerKey};
use zeroize::Zeroizing;

use crate::errors::{invalid, not_configured};
use crate::gucs::{text, OLD_SERVER_KEYS, SERVER_KEY, SERVER_KEY_FILE};

thread_local! {
    /// (the key material it was built from, the keyring).
    static CACHE: RefCell<Option<(Zeroizing<String>, Keyring)>> = const { RefCell::new(None) };
}

/// Key material: primary key first, then older keys, newline-separated.
fn material() -> Zeroizing<String> {
    if let Some(primary) = text(&SERVER_KEY).map(Zeroizing::new) {
        let old = text(&OLD_SERVER_KEYS).map(Zeroizing::new);
        let mut m = Zeroizing::new(primary.trim().to_owned());
        if let Some(old) = old {
            for k in old.split(',') {
                m.push('\n');
                m.push_str(k.trim());
            }
        }
        return m;
    }
    if let Some(path) = text(&SERVER_KEY_FILE) {
        return match std::fs::read_to_string(&path) {
            Ok(s) => Zeroizing::new(s),
            Err(e) => not_configured(format!(
                "cannot read hookseal.server_key_file {path:?}: {e}"
            )),
        };
    }
    not_configured("no server key: set hookseal.server_key or hookseal.server_key_file")
}

fn build(m: &str) -> Keyring {
    let mut keys = m
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let parse = |k: &str| {
        ServerKey::from_hex(k).unwrap_or_else(|e| invalid(format!("server key setting: {e}")))
    };
    let primary = match keys.next() {
        Some(k) => parse(k),
        None => not_configured("the server key setting is empty"),
    };
    keys.fold(Keyring::new(primary), |ring, k| ring.with_old_key(parse(k)))
}

/// Runs `f` with the current keyring.
pub fn with_keyring<R>(f: impl FnOnce(&Keyring) -> R) -> R {
    let m = material();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let fresh = !matches!(&*c, Some((old, _)) if *old == m);
        if fresh {
            let ring = build(&m);
            *c = Some((m, ring));
        }
        match &*c {
            Some((_, ring)) => f(ring),
            None => not_configured("no server key"),
        }
    })
}
