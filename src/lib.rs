//! Switchyard: a self-hosted event router in the class of Amazon EventBridge.
//!
//! Producers post events to a bus; rules made of EventBridge event patterns select them; each
//! match is delivered to webhook targets. This crate is the library behind the `switchyard`
//! binary, so tests and benchmarks drive the same code.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod bench;
pub mod cli;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod discovery;
pub mod domain;
pub mod ingest;
pub mod metrics;
pub mod otel;
pub mod pattern;
pub mod replay;
pub mod retention;
pub mod rules_files;
pub mod ruleset;
pub mod schema;
pub mod secrets;
pub mod server;
pub mod state;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod transform;
pub mod ui;
