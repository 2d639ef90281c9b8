//! agentic: a GitHub App that reviews pull requests and plans AWS changes
//! from `/agentic` commands, under guardrails.
//!
//! The map of the code — the flow of one event, what each module owns, the
//! store's tables and its two backends, the guardrails — is
//! `docs/ARCHITECTURE.md` in the repository.

pub mod agent;
pub mod app_credentials;
pub mod authz;
pub mod aws;
pub mod backoff;
pub mod ceilings;
pub mod ci_log;
pub mod cli;
pub mod command;
pub mod config;
pub mod diff;
pub mod domain;
pub mod event;
pub mod github;
pub mod guidelines;
pub mod handlers;
pub mod intake;
pub mod jobs;
pub mod limits;
pub mod manifest;
pub mod markdown;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod redact;
pub mod repo_config;
pub mod review;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod walkthrough;
pub mod worker;

/// Install one process-wide rustls crypto provider (ring), so that crates
/// that would each pick their own agree. Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
