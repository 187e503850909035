//! hookseal as a PostgreSQL extension (`CREATE EXTENSION hookseal`).
//!
//! A thin adapter: SQL arguments in, the `hookseal` core crate does every MAC,
//! signature header and AES-GCM operation, errors out as SQLSTATEs. The
//! tables, triggers, roles and grants are plain SQL in the repository's
//! top-level `sql/hookseal.sql`, included at the end of the install script.
//!
//! Modules: [`gucs`] (every setting), [`keys`] (server keyring from the
//! settings), [`functions`] (the SQL-callable functions), [`errors`] (core
//! error -> SQLSTATE).

use pgrx::prelude::*;

pgrx::pg_module_magic!(name, version);

pub mod errors;
pub mod functions;
pub mod gucs;
pub mod keys;

/// Registers the settings when the library is loaded, which must be by
/// `shared_preload_libraries` (0.3.0): only then does the postmaster itself
/// define the key settings, so that its check hook refuses a key written
/// into `postgresql.conf` before PostgreSQL could log `parameter
/// "hookseal.server_key" changed to "<the key>"` at a reload (a placeholder
/// setting of a library loaded later would be logged).
///
/// A backend may load a newer copy of the file (a package upgrade replaced it
/// under a running server): that is allowed while `shared_preload_libraries`
/// names hookseal, because the postmaster's copy guards the settings.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // SAFETY: a flag PostgreSQL sets while it loads shared_preload_libraries.
    let preloading = unsafe { pg_sys::process_shared_preload_libraries_in_progress };
    if !preloading && !listed_for_preload() {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "hookseal must be loaded at server start: add it to shared_preload_libraries and restart",
            "Preloaded, the server refuses a key written into postgresql.conf instead of logging it at a reload; \
             the key belongs in the file named by hookseal.server_key_file."
        );
    }
    gucs::init();
}

/// True when `shared_preload_libraries` names this library (`hookseal`,
/// `$libdir/hookseal`, `hookseal.so`, quoted or not).
fn listed_for_preload() -> bool {
    // SAFETY: PostgreSQL returns NULL or a NUL-terminated string it owns,
    // read here before anything can change the setting.
    let list = unsafe {
        let p = pg_sys::GetConfigOption(c"shared_preload_libraries".as_ptr(), true, false);
        if p.is_null() {
            return false;
        }
        std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
    };
    list.split(',').any(|item| {
        let name = item.trim().trim_matches('"');
        let name = name.rsplit('/').next().unwrap_or(name);
        name.strip_suffix(".so").unwrap_or(name) == "hookseal"
    })
}

pgrx::extension_sql_file!("../sql/hookseal.sql", name = "hookseal_schema", finalize);

/// `#[pg_test]`s: the SQL functions against the shared vectors, and the
/// outbox transaction rules. Security (roles refused) and rollback are in the
/// pg_regress suite (`tests/pg_regress`), where a refused statement shows as
/// its error.
#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;
    use serde_json::Value;

    const SCHEMES: &str = include_str!("../../../tests/vectors/schemes.json");
    const PUBLISHED: &str = include_str!("../../../tests/vectors/published.json");
    const STRINGIFY: &str = include_str!("../../../tests/vectors/json-stringify.json");

    fn q(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    fn one_bool(sql: &str) -> bool {
        Spi::get_one::<bool>(sql).unwrap().unwrap()
    }

    fn verify_sql(v: &Value) -> String {
        let headers = v.get("headers").cloned().unwrap_or(Value::Null);
        let now = v["now"].as_i64().unwrap_or(0);
        format!(
            "SELECT hookseal.webhook_verify({}, ARRAY[{}], {}, {}::jsonb, 300, to_timestamp({now}), {})",
            q(v["scheme"].as_str().unwrap()),
            q(v["secret"].as_str().unwrap()),
            q(v["body"].as_str().unwrap()),
            q(&headers.to_string()),
            v["url"].as_str().map_or("NULL".into(), q),
        )
    }

    #[pg_test]
    fn every_vector_verifies_in_sql() {
        let mut n = 0;
        for (doc, key) in [(SCHEMES, "schemes"), (PUBLISHED, "vectors")] {
            let doc: Value = serde_json::from_str(doc).unwrap();
            for v in doc[key].as_array().unwrap() {
                let want = v["expect"].as_str() != Some("reject");
                assert_eq!(one_bool(&verify_sql(v)), want, "{v}");
                n += 1;
            }
        }
        assert!(n >= 16);
    }

    #[pg_test]
    fn sign_reproduces_header_vectors() {
        let doc: Value = serde_json::from_str(SCHEMES).unwrap();
        for v in doc["schemes"].as_array().unwrap() {
            let scheme = v["scheme"].as_str().unwrap();
            if scheme == "signed-url" || v.get("note").is_some() {
                continue;
            }
            let headers = v["headers"].as_object().unwrap();
            let get = |suffix: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k.to_ascii_lowercase().ends_with(suffix))
                    .map(|(_, x)| x.as_str().unwrap().to_owned())
            };
            let id = get("-id");
            let now = v["now"].as_i64().unwrap_or(0);
            let sql = format!(
                "SELECT hookseal.webhook_sign({}, {}, {}, {}, to_timestamp({now}))",
                q(scheme),
                q(v["secret"].as_str().unwrap()),
                q(v["body"].as_str().unwrap()),
                id.as_deref().map_or("NULL".into(), q),
            );
            let got = Spi::get_one::<pgrx::JsonB>(&sql).unwrap().unwrap().0;
            for (k, want) in headers {
                assert_eq!(got[k], *want, "{scheme} {k}");
            }
        }
    }

    /// `json-stringify.json` in SQL: `raw` verifies under both
    /// re-serializing schemes; `webhook_sign_message(raw)` returns
    /// `canonical` and the vector's signature, `webhook_sign` the same
    /// signature, and `webhook_body` the body the outbox stores.
    #[pg_test]
    fn json_stringify_vectors_in_sql() {
        let doc: Value = serde_json::from_str(STRINGIFY).unwrap();
        let secret = q(doc["secret"].as_str().unwrap());
        let mut n = 0;
        for v in doc["vectors"].as_array().unwrap() {
            let (raw, canonical) = (v["raw"].as_str().unwrap(), v["canonical"].as_str().unwrap());
            for (scheme, header) in [("x-signature", "x-signature"), ("fincra", "signature")] {
                let sig = v[scheme].as_str().unwrap();
                let headers = serde_json::json!({ header: sig }).to_string();
                let ok = one_bool(&format!(
                    "SELECT hookseal.webhook_verify({}, ARRAY[{secret}], {}, {}::jsonb)",
                    q(scheme),
                    q(raw),
                    q(&headers)
                ));
                assert!(ok, "{scheme} verify {v}");
                let (body, signed) = Spi::get_two::<String, pgrx::JsonB>(&format!(
                    "SELECT body, headers FROM hookseal.webhook_sign_message({}, {secret}, {})",
                    q(scheme),
                    q(raw)
                ))
                .unwrap();
                assert_eq!(body.as_deref(), Some(canonical), "{scheme} {v}");
                assert_eq!(signed.unwrap().0[header], sig, "{scheme} {v}");
                let plain = Spi::get_one::<pgrx::JsonB>(&format!(
                    "SELECT hookseal.webhook_sign({}, {secret}, {})",
                    q(scheme),
                    q(raw)
                ))
                .unwrap()
                .unwrap();
                assert_eq!(plain.0[header], sig);
                let stored = Spi::get_one::<String>(&format!(
                    "SELECT hookseal.webhook_body({}, {})",
                    q(scheme),
                    q(raw)
                ))
                .unwrap();
                assert_eq!(stored.as_deref(), Some(canonical));
                n += 1;
            }
            // Other schemes keep the bytes.
            let kept = Spi::get_one::<String>(&format!(
                "SELECT hookseal.webhook_body('standard', {})",
                q(raw)
            ))
            .unwrap();
            assert_eq!(kept.as_deref(), Some(raw));
        }
        assert_eq!(n, 40);
        // Header values lose surrounding spaces and tabs here as in HTTP.
        let v = &doc["vectors"][0];
        let headers = serde_json::json!({"x-signature": format!(" {}\t", v["x-signature"].as_str().unwrap())});
        assert!(one_bool(&format!(
            "SELECT hookseal.webhook_verify('x-signature', ARRAY[{secret}], {}, {}::jsonb)",
            q(v["raw"].as_str().unwrap()),
            q(&headers.to_string())
        )));
    }

    #[pg_test]
    fn null_input_is_false_not_null() {
        for sql in [
            "SELECT hookseal.webhook_verify('github', NULL, 'x', '{}')",
            "SELECT hookseal.webhook_verify('github', ARRAY['s'], NULL, '{}')",
            "SELECT hookseal.webhook_verify('github', ARRAY['s'], 'x', NULL)",
            "SELECT hookseal.webhook_verify(NULL, ARRAY['s'], 'x', '{}')",
            "SELECT hookseal.webhook_verify('github', ARRAY[NULL]::text[], 'x', '{}')",
            "SELECT hookseal.webhook_verify('github', ARRAY['s'], 'x', '[1]')",
        ] {
            assert_eq!(Spi::get_one::<bool>(sql).unwrap(), Some(false), "{sql}");
        }
        let r = Spi::get_one::<String>(
            "SELECT hookseal.webhook_verify_reason('github', ARRAY['s'], 'x', '{}')",
        )
        .unwrap()
        .unwrap();
        assert!(r.starts_with("missing_header"), "{r}");
    }

    #[pg_test]
    fn every_secret_vector_decrypts_under_its_key() {
        let doc: Value = serde_json::from_str(SCHEMES).unwrap();
        let secrets = doc["secrets"].as_array().unwrap();
        for v in secrets {
            // The configured key stays primary; the vector's key is an old key.
            Spi::run(&format!(
                "SET LOCAL hookseal.old_server_keys = {}",
                q(v["server_key_hex"].as_str().unwrap())
            ))
            .unwrap();
            let got = Spi::get_one::<String>(&format!(
                "SELECT hookseal._decrypt_secret({})",
                q(v["stored"].as_str().unwrap())
            ))
            .unwrap()
            .unwrap();
            assert_eq!(got, v["secret"].as_str().unwrap());
            let hash = Spi::get_one::<String>(&format!("SELECT hookseal.secret_hash({})", q(&got)))
                .unwrap()
                .unwrap();
            assert_eq!(hash, v["hash"].as_str().unwrap());
            // Re-encrypted, it names the primary key and decrypts again.
            let again = Spi::get_one::<String>(&format!(
                "SELECT hookseal._rewrap({})",
                q(v["stored"].as_str().unwrap())
            ))
            .unwrap()
            .unwrap();
            assert!(again.starts_with("hs1:"), "{again}");
            Spi::run("RESET hookseal.old_server_keys").unwrap();
            let back =
                Spi::get_one::<String>(&format!("SELECT hookseal._decrypt_secret({})", q(&again)))
                    .unwrap()
                    .unwrap();
            assert_eq!(back, got);
        }
        assert_eq!(secrets.len(), 4);
    }

    #[pg_test]
    fn signed_url_and_bytea_sign_match_vectors() {
        let doc: Value = serde_json::from_str(SCHEMES).unwrap();
        let v = doc["schemes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["scheme"] == "signed-url")
            .unwrap();
        let got = Spi::get_one::<pgrx::JsonB>(&format!(
            "SELECT hookseal.webhook_sign('signed-url', {}, {})",
            q(v["secret"].as_str().unwrap()),
            q(v["body"].as_str().unwrap())
        ))
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(got["signature"], v["signature"]);
        let gh = Spi::get_one::<pgrx::JsonB>(
            "SELECT hookseal.webhook_sign('github', 'It''s a Secret to Everybody', convert_to('Hello, World!', 'UTF8'))",
        )
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(
            gh["X-Hub-Signature-256"],
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[pg_test]
    #[should_panic(expected = "unknown scheme")]
    fn unknown_scheme_is_an_error() {
        Spi::get_one::<pgrx::JsonB>("SELECT hookseal.webhook_sign('nope', 'secret', 'x')").unwrap();
    }

    fn setup_app() -> (String, String) {
        let app = Spi::get_one::<String>("SELECT hookseal.create_app('shop')")
            .unwrap()
            .unwrap();
        let secret = Spi::get_one::<String>(&format!(
            "SELECT secret FROM hookseal.create_endpoint({}, 'http://127.0.0.1:9/hook', 'native')",
            q(&app)
        ))
        .unwrap();
        (app, secret.unwrap())
    }

    /// The SQL defaults of the replay tolerance (`tolerance_s` of
    /// webhook_verify and webhook_verify_reason, text and bytea) are the
    /// core's DEFAULT_TOLERANCE: pgrx's `default!` takes a literal, so this
    /// test holds them to the one constant.
    #[pg_test]
    fn sql_tolerance_defaults_are_the_core_constant() {
        let want = format!(
            "tolerance_s integer DEFAULT {}",
            hookseal_core::DEFAULT_TOLERANCE.as_secs()
        );
        let args = Spi::connect(|c| {
            c.select(
                "SELECT pg_get_function_arguments(p.oid) FROM pg_proc p
                 JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = 'hookseal' AND p.proname IN ('webhook_verify', 'webhook_verify_reason')
                   AND pg_get_function_arguments(p.oid) LIKE '%tolerance_s%'",
                None,
                &[],
            )
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap().unwrap())
            .collect::<Vec<_>>()
        });
        assert_eq!(args.len(), 4, "{args:?}");
        for a in &args {
            assert!(a.contains(&want), "{a}");
        }
    }

    #[pg_test]
    fn committed_event_leaves_one_signed_row_per_matching_endpoint() {
        let (app, secret) = setup_app();
        Spi::run(&format!(
            "SELECT hookseal.create_endpoint({}, 'http://127.0.0.1:9/other', 'standard', ARRAY['invoice.paid'])",
            q(&app)
        ))
        .unwrap();
        Spi::run(&format!(
            "SELECT hookseal.webhook_send({}, 'payment.created', '{{\"amount\":1250}}')",
            q(&app)
        ))
        .unwrap();
        // Only the endpoint without a type filter matches payment.created.
        let n = Spi::get_one::<i64>("SELECT count(*) FROM hookseal.outbox")
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        let (body, headers) =
            Spi::get_two::<String, pgrx::JsonB>("SELECT body, headers FROM hookseal.outbox")
                .unwrap();
        let (body, headers) = (body.unwrap(), headers.unwrap().0);
        // The row verifies with the core crate and the endpoint's secret.
        let pairs: Vec<(String, String)> = headers
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        let v = hookseal_core::Verifier::new(
            hookseal_core::Scheme::preset("native").unwrap(),
            &[hookseal_core::Secret::new(secret).unwrap()],
        )
        .unwrap();
        v.verify(body.as_bytes(), &pairs, hookseal_core::UnixTime::now())
            .unwrap();
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["type"], "payment.created");
        assert_eq!(body["data"]["amount"], 1250);
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    /// One-off initialization when the test framework starts.
    pub fn setup(_options: Vec<&str>) {}

    /// The test cluster's throwaway server key.
    pub const TEST_KEY: &str = "1d28023fc6320b42781a4d811465e3a23b2a4f21340e27c06e683c1e987ed5f9";

    /// Settings for the test cluster: the library preloaded (so the
    /// superuser-only key settings are defined before any session reads
    /// them) and the throwaway key in a key file, the one way a key is
    /// configured (an inline key in postgresql.conf is refused).
    ///
    /// pgrx asks for these once per test, while the server may be reading
    /// the key file for another test: the file is written once per test
    /// process, to a private name renamed into place, so no backend ever
    /// reads it empty or half-written.
    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        static LINE: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
        let line = LINE.get_or_init(|| {
            let path = std::env::temp_dir().join("hookseal-pgrx-test.key");
            let tmp = path.with_extension(format!("key.{}", std::process::id()));
            std::fs::write(&tmp, format!("{TEST_KEY}\n")).expect("write the test key file");
            std::fs::rename(&tmp, &path).expect("move the test key file into place");
            let line = format!("hookseal.server_key_file = '{}'", path.display());
            Box::leak(line.into_boxed_str())
        });
        vec!["shared_preload_libraries = 'hookseal'", line]
    }
}
