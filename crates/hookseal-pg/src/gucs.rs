//! Every setting the extension reads, in one place.
//!
//! The server key can come from `hookseal.server_key` (64 hex characters) or
//! from a file named by `hookseal.server_key_file`. Both are superuser-only and
//! hidden from `SHOW ALL`. A setting is only defined once the library is
//! loaded; until then PostgreSQL keeps a placeholder that any role can read.
//! So put the key itself in a file (only the path is a setting), or preload
//! the library (`shared_preload_libraries = 'hookseal'`) when the key is a
//! setting in `postgresql.conf`.

use std::ffi::CString;

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// The primary server key, 64 hex characters.
pub static SERVER_KEY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Older server keys that still decrypt, comma-separated, during a rotation.
pub static OLD_SERVER_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// A file holding the primary key (first line) and older keys (following lines).
pub static SERVER_KEY_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Registers the settings.
pub fn init() {
    let secret = GucFlags::NO_SHOW_ALL | GucFlags::SUPERUSER_ONLY;
    GucRegistry::define_string_guc(
        c"hookseal.server_key",
        c"Server key (64 hex characters) that encrypts webhook secrets at rest.",
        c"Superuser-only and hidden. Prefer hookseal.server_key_file, or preload the library.",
        &SERVER_KEY,
        GucContext::Suset,
        secret,
    );
    GucRegistry::define_string_guc(
        c"hookseal.old_server_keys",
        c"Comma-separated older server keys that still decrypt during a key rotation.",
        c"Superuser-only and hidden.",
        &OLD_SERVER_KEYS,
        GucContext::Suset,
        secret,
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

/// A setting's text, if set and non-empty.
pub fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .and_then(|c| c.into_string().ok())
        .filter(|s| !s.trim().is_empty())
}
