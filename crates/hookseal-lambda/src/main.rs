//! `bootstrap`: under Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves
//! Function URL and scheduled invocations; elsewhere it is a local HTTP
//! server on `LISTEN_ADDR` (default 127.0.0.1:3000) for development.
#![forbid(unsafe_code)]

use std::sync::Arc;

use hookseal_lambda::{handle, App, Loader};
use lambda_runtime::{service_fn, LambdaEvent};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_target(false)
        // CloudWatch or a file, never a terminal: no colour codes.
        .with_ansi(false)
        .init();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), lambda_runtime::Error> {
    // Spans over OTLP when the OTEL_EXPORTER_OTLP_* variables ask (flushed
    // before each invocation answers: a frozen function exports nothing).
    let telemetry = Arc::new(hookseal_otel::Telemetry::init("hookseal-lambda")?);
    let env = |k: &str| std::env::var(k).ok();
    let settings = Loader::new(&env).load().await?;
    let app = App::new(settings)?;
    app.check_database().await?;
    let router = app.router();
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let app = Arc::clone(&app);
        return lambda_runtime::run(service_fn(move |ev: LambdaEvent<serde_json::Value>| {
            let (app, router, telemetry) = (app.clone(), router.clone(), telemetry.clone());
            async move {
                let answer = handle(&app, &router, ev).await;
                telemetry.flush();
                answer
            }
        }))
        .await;
    }
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving locally (not under Lambda)");
    hookseal_axum::serve(
        listener,
        router,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
        std::time::Duration::from_secs(1),
    )
    .await?;
    Ok(())
}
