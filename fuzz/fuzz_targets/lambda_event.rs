//! The Lambda event path: any event JSON → the handler's response. With
//! routes for two schemes and no database or relay. Never a panic; an
//! event that is not JSON is the runtime's business (it is refused before
//! the handler); every HTTP answer has a status and a JSON body.
#![no_main]

use std::sync::{Arc, OnceLock};

use hookseal_lambda::{handle, App, Loader};
use lambda_runtime::{Context, LambdaEvent};
use libfuzzer_sys::fuzz_target;

struct World {
    rt: tokio::runtime::Runtime,
    app: Arc<App>,
    router: axum::Router,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        // libfuzzer-sys's panic hook aborts on every panic, also one the
        // handler catches at its boundary (lambda_http's URI panics, turned
        // into a 400). The default hook is put back: a panic that escapes
        // the handler still aborts (the fuzz_target wrapper catches it).
        let _ = std::panic::take_hook();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let vars = |k: &str| -> Option<String> {
            match k {
                "INBOUND_SCHEME" => Some("standard".into()),
                "INBOUND_SECRET" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
                "HOOKSEAL_ROUTES" => Some(
                    r#"[{"path": "/github", "scheme": "github", "secret_env": "GH"}]"#.into(),
                ),
                "GH" => Some("gh-secret-for-fuzzing".into()),
                // No destination: verify-only, explicitly (0.3.0).
                "HOOKSEAL_MODE" => Some("verify-only".into()),
                _ => None,
            }
        };
        let (app, router) = rt.block_on(async {
            let settings = Loader::new(&vars).load().await.unwrap();
            let app = App::new(settings).unwrap();
            let router = app.router();
            (app, router)
        });
        World { rt, app, router }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let w = world();
    let out = w.rt.block_on(handle(&w.app, &w.router, LambdaEvent::new(payload, Context::default())));
    if let Ok(answer) = out {
        if let Some(status) = answer.get("statusCode") {
            let status = status.as_u64().expect("a numeric status");
            assert!((200..600).contains(&status), "{status}");
            assert_ne!(status, 200, "an unsigned fuzzed event was accepted: {answer}");
        }
    }
});
