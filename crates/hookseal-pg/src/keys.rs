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
/// The primary comes from a session's `hookseal.server_key`, else from the
/// key file; a session's `hookseal.old_server_keys` are added after either.
fn material() -> Zeroizing<String> {
    let mut m = match text(&SERVER_KEY) {
        Some(primary) => Zeroizing::new(primary.trim().to_owned()),
        None => from_file(),
    };
    if let Some(old) = text(&OLD_SERVER_KEYS).map(Zeroizing::new) {
        for k in old.split(',') {
            m.push('\n');
            m.push_str(k.trim());
        }
    }
    m
}

/// The key file's text (`hookseal.server_key_file`).
fn from_file() -> Zeroizing<String> {
    let Some(path) = text(&SERVER_KEY_FILE) else {
        not_configured(
            "no server key: set hookseal.server_key_file to a file holding it (hookseal keygen --server-key)",
        )
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => Zeroizing::new(s),
        Err(e) => not_configured(format!(
            "cannot read hookseal.server_key_file {path:?}: {e}"
        )),
    }
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
