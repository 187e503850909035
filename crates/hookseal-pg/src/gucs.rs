//! Every setting the extension reads, in one place.
//!
//! The server key comes from the file named by `hookseal.server_key_file`
//! (first line: the key; later lines: older keys that still decrypt). Only
//! the path is a setting. `hookseal.server_key` and
//! `hookseal.old_server_keys` still exist, superuser-only and hidden from
//! `SHOW ALL`, but since 0.3.0 they take a value only from a session's `SET`
//! (tests, a one-off by hand): PostgreSQL writes `parameter "…" changed to
//! "…"` with the value into the server log when a setting from
//! `postgresql.conf` changes at a reload, and keeps `ALTER DATABASE/ROLE …
//! SET` values in a catalog every role can read. So a value from a
//! configuration file, `ALTER SYSTEM`, the command line, the environment, a
//! connection's options or a per-database/role setting is refused by a check
//! hook whose message names the setting, never the value; without the value
//! there is no "changed to" line. (A setting is only defined once the
//! library is loaded: preload it, `shared_preload_libraries = 'hookseal'`,
//! so that the postmaster itself runs the check at a reload.)

use std::ffi::{c_char, c_void, CString};

use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// The primary server key, 64 hex characters.
pub static SERVER_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Older server keys that still decrypt, comma-separated, during a rotation.
pub static OLD_SERVER_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// A file holding the primary key (first line) and older keys (following lines).
pub static SERVER_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// The largest body `webhook_send` stores (as delivered) and
/// `webhook_verify` takes, in bytes (default: what hookseal's receivers
/// accept, `hookseal::DEFAULT_MAX_BODY`). Any role may raise it for itself
/// (`SET`, `ALTER ROLE … SET`): a guard against mistakes, not a boundary.
pub static MAX_BODY_BYTES: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_MAX_BODY_BYTES);

/// `hookseal::DEFAULT_MAX_BODY` as a setting's value.
const DEFAULT_MAX_BODY_BYTES: i32 = {
    assert!(hookseal_core::DEFAULT_MAX_BODY <= i32::MAX as usize);
    hookseal_core::DEFAULT_MAX_BODY as i32
};

/// Registers the settings.
pub fn init() {
    let secret = GucFlags::NO_SHOW_ALL | GucFlags::SUPERUSER_ONLY;
    // SAFETY: `session_only` cannot panic (no allocation but PostgreSQL's
    // own pstrdup, which reports out-of-memory as an ERROR).
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"hookseal.server_key",
            c"Server key for tests and one-off sessions: SET only. Use hookseal.server_key_file.",
            c"Superuser-only and hidden. A value from a configuration file, ALTER SYSTEM, \
              ALTER DATABASE/ROLE or the command line is refused: PostgreSQL would log it.",
            &SERVER_KEY,
            GucContext::Suset,
            secret,
            Some(session_only),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"hookseal.old_server_keys",
            c"Older server keys for tests and one-off sessions: SET only. Use the key file.",
            c"Superuser-only and hidden; refused from configuration files like hookseal.server_key.",
            &OLD_SERVER_KEYS,
            GucContext::Suset,
            secret,
            Some(session_only),
            None,
            None,
        );
    }
    GucRegistry::define_int_guc(
        c"hookseal.max_body_bytes",
        c"Largest body webhook_send stores (as delivered) and webhook_verify takes, in bytes.",
        c"Default 262144, what hookseal's receivers accept by default; raise the receivers' limits too.",
        &MAX_BODY_BYTES,
        1024,
        1 << 30,
        GucContext::Userset,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_string_guc(
        c"hookseal.server_key_file",
        c"File whose first line is the server key and whose later lines are older keys.",
        c"Read on first use in each session. Only the path is a setting.",
        &SERVER_KEY_FILE,
        GucContext::Sighup,
        GucFlags::SUPERUSER_ONLY,
    );
}

/// Check hook of the inline key settings: a non-empty value is taken only
/// from a session (`SET`, `SET LOCAL`, a function's `SET` clause). The
/// refusal's message is ours (`GUC_check_errmsg`), so PostgreSQL does not
/// write its default one, which quotes the value.
#[pg_guard]
unsafe extern "C-unwind" fn session_only(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    use pg_sys::GucSource::{PGC_S_DEFAULT, PGC_S_DYNAMIC_DEFAULT, PGC_S_OVERRIDE, PGC_S_SESSION};
    // SAFETY: PostgreSQL passes a valid pointer to the candidate value,
    // which is NULL or a NUL-terminated string.
    let empty = unsafe { (*newval).is_null() || *(*newval) == 0 };
    if empty
        || matches!(
            source,
            PGC_S_DEFAULT | PGC_S_DYNAMIC_DEFAULT | PGC_S_SESSION | PGC_S_OVERRIDE
        )
    {
        return true;
    }
    // SAFETY: these are PostgreSQL's globals for a check hook's message;
    // pstrdup copies into the current memory context, as GUC_check_errmsg does.
    unsafe {
        pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(
            c"hookseal: a server key in a configuration file, ALTER SYSTEM, ALTER DATABASE/ROLE \
              or the command line is refused (PostgreSQL would write it to the server log)"
                .as_ptr(),
        );
        pg_sys::GUC_check_errhint_string = pg_sys::pstrdup(
            c"put the key in a file readable only by the server and set \
              hookseal.server_key_file to its path (line 1: key; later lines: old keys)"
                .as_ptr(),
        );
    }
    false
}

/// A setting's text, if set and non-empty.
pub fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .and_then(|c| c.into_string().ok())
        .filter(|s| !s.trim().is_empty())
}
