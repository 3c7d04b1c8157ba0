//! Logging: one subscriber per process, human-readable or JSON lines, filtered by
//! `SWITCHYARD_LOG` (tracing's `EnvFilter` syntax).

use opentelemetry_sdk::trace::SdkTracer;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The target of the `tracing` spans that are exported over OTLP (and only those: the
/// others are for logs).
pub const EXPORTED: &str = "switchyard::otel";

/// Installs the global subscriber (a second call does nothing): log lines filtered by `filter`,
/// and, with a `tracer`, the spans of target [`EXPORTED`] exported through it.
pub fn init(filter: EnvFilter, format: LogFormat, tracer: Option<SdkTracer>) {
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
    };
    let spans = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target(EXPORTED, Level::INFO))
    });
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(spans)
        .try_init();
}

/// `error: cause: cause…`, the whole chain on one line, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
