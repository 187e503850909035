//! Core errors as PostgreSQL errors with SQLSTATEs. Messages come from the
//! core's `Display`, which never carries a secret or a key.

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// Raises `ERROR` with `code` and `msg`.
pub fn raise(code: PgSqlErrorCode, msg: impl Into<String>) -> ! {
    ereport!(ERROR, code, msg.into());
}

/// A bad argument: unknown scheme, unusable secret, malformed stored value.
pub fn invalid(msg: impl std::fmt::Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("hookseal: {msg}"),
    )
}

/// The server is not configured for what was asked (no server key).
pub fn not_configured(msg: impl std::fmt::Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        format!("hookseal: {msg}"),
    )
}

/// A stored secret that does not decrypt: wrong key, or altered data.
pub fn storage(e: hookseal_core::StorageError) -> ! {
    use hookseal_core::StorageError as E;
    match e {
        E::DecryptFailed | E::UnknownKey(_) | E::BadPlaintext => raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("hookseal: {e}"),
        ),
        E::EncryptFailed => raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("hookseal: {e}"),
        ),
        _ => invalid(e),
    }
}
