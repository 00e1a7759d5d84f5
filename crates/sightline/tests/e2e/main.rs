//! End-to-end tests: the real `sightline` binary over real HTTP. One test
//! binary with shared helpers (`support`), one module per concern.

mod bad_input;
mod crash;
mod disk_full;
mod ingest;
mod lifecycle;
mod metrics;
mod metrics_otlp;
mod projects;
mod search;
mod sentry;
mod ship;
mod support;
mod traces;
