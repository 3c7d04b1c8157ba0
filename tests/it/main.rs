//! Integration tests: the real application on a real Postgres (one cluster per test run, a fresh
//! database per test), driven over HTTP.

mod support;

mod audit;
mod aws;
mod bench;
mod buses;
mod cloud_events;
mod connections;
mod crash_safety;
mod dead_letters;
mod delivery;
mod embedded;
mod hostile;
mod idempotency;
mod ingest;
mod openapi;
mod ordering;
mod otel;
mod outage;
mod replay;
mod retention;
mod rules;
mod rules_apply;
mod schemas;
mod schemathesis;
mod search;
mod security_headers;
mod slow_clients;
mod snapshots;
mod throttle;
mod tokens;
mod trace_context;
mod ui;
mod ui_authoring;
mod workers;
