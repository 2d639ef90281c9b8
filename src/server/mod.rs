//! The HTTP side: router, shared state, and the `serve` entry point.

pub mod setup;
pub mod webhook;

use std::sync::Arc;

use anyhow::Context;
use arc_swap::{ArcSwap, ArcSwapOption};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, GitHubApp};
use crate::handlers::JobContext;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::worker::Worker;

/// Shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Poked when jobs are committed, so the worker starts at once.
    pub wake: Arc<Notify>,
    /// The secrets deliveries may be signed with. Swapped (not locked) when
    /// the setup flow registers an App while the server runs.
    secrets: Arc<ArcSwap<Vec<SecretString>>>,
    github: Arc<ArcSwapOption<crate::github::GitHubApp>>,
    pub setup: Arc<setup::SetupState>,
    /// Deliveries being read and stored now (`AGENTIC_MAX_INFLIGHT_DELIVERIES`).
    pub inflight: Arc<tokio::sync::Semaphore>,
    /// Shared with the logs and the worker; learns the secrets of an App
    /// registered while running.
    pub redactor: crate::redact::Redactor,
    /// The operator's scope ceilings, swapped by [`AppState::reload_policy`].
    pub policy: Arc<ArcSwapOption<crate::ceilings::Policy>>,
}

impl AppState {
    /// Fails when the configured App key cannot be used.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        redactor: crate::redact::Redactor,
    ) -> anyhow::Result<AppState> {
        let github = match &config.app {
            Some(app) => Some(
                crate::github::GitHubApp::new(
                    app.app_id,
                    &app.private_key,
                    &config.github_api_url,
                    config.content_quota,
                    store.clone(),
                )
                .context("AGENTIC_GITHUB_PRIVATE_KEY")?,
            ),
            None => None,
        };
        let inflight = config.max_inflight_deliveries;
        Ok(AppState {
            store,
            metrics: Arc::new(Metrics::new()),
            secrets: Arc::new(ArcSwap::from_pointee(config.webhook_secrets.clone())),
            github: Arc::new(ArcSwapOption::from(github)),
            wake: Arc::new(Notify::new()),
            setup: Arc::new(setup::SetupState::default()),
            inflight: Arc::new(tokio::sync::Semaphore::new(inflight)),
            redactor,
            policy: Arc::new(ArcSwapOption::from(config.policy.clone())),
            config,
        })
    }

    /// Read `AGENTIC_POLICY_FILE` again (SIGHUP). A file that does not
    /// parse is refused and the policy in force stays; the error names the
    /// key. Without a policy file there is nothing to read.
    pub fn reload_policy(&self) -> Result<usize, String> {
        let Some(path) = &self.config.policy_file else {
            return Err("AGENTIC_POLICY_FILE is not set; there is no policy to reload".into());
        };
        let policy = crate::ceilings::Policy::load(path)?;
        let entries = policy.len();
        self.policy.store(Some(Arc::new(policy)));
        Ok(entries)
    }

    pub fn webhook_secrets(&self) -> arc_swap::Guard<Arc<Vec<SecretString>>> {
        self.secrets.load()
    }

    /// The App in use, if one is configured or was registered.
    pub fn app(&self) -> Option<Arc<crate::github::GitHubApp>> {
        self.github.load_full()
    }

    /// Start using a freshly registered App.
    pub fn install_app(&self, app: GitHubApp, webhook_secret: SecretString) -> anyhow::Result<()> {
        let client = crate::github::GitHubApp::new(
            app.app_id,
            &app.private_key,
            &self.config.github_api_url,
            self.config.content_quota,
            self.store.clone(),
        )?;
        self.redactor.learn([
            webhook_secret.expose_secret().to_string(),
            app.private_key.expose_secret().to_string(),
        ]);
        // Every configured secret stays accepted; the App's joins them.
        let mut secrets = self.secrets.load().as_ref().clone();
        secrets.push(webhook_secret);
        self.secrets.store(Arc::new(secrets));
        self.github.store(Some(client));
        Ok(())
    }

    pub fn worker(&self) -> Worker {
        Worker {
            ctx: JobContext::new(
                self.store.clone(),
                self.config.clone(),
                self.github.clone(),
                self.redactor.clone(),
                self.policy.clone(),
            ),
            metrics: self.metrics.clone(),
            wake: self.wake.clone(),
        }
    }
}

/// The paths the internet may reach: the webhook and the setup flow. A
/// reverse proxy exposes these and nothing else.
pub const PUBLIC_PATHS: &[&str] = &[WEBHOOK_PATH, "/", "/setup/callback"];

/// Where GitHub delivers webhooks.
pub const WEBHOOK_PATH: &str = "/api/github/webhooks";

/// The whole HTTP surface on one listener (no `AGENTIC_METRICS_LISTEN`).
pub fn router(state: AppState) -> Router {
    public_router(state.clone()).merge(operator_router(state))
}

/// The webhook and the setup flow.
pub fn public_router(state: AppState) -> Router {
    Router::new()
        .route(
            WEBHOOK_PATH,
            post(webhook::receive).layer(DefaultBodyLimit::max(webhook::MAX_BODY_BYTES)),
        )
        .route("/", get(setup::index))
        .route("/setup/callback", get(setup::callback))
        .with_state(state)
}

/// Health and metrics, for the operator's monitoring only.
pub fn operator_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `/healthz` and `/readyz`: 200 only while deliveries can be stored (the
/// database answers and the group-commit writer runs), so a load balancer
/// stops sending to a replica that would answer 503 anyway.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ready().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "health check: cannot store deliveries");
            (StatusCode::SERVICE_UNAVAILABLE, "cannot store deliveries\n").into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.render(&state.store).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot render metrics");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// A running server, for tests and for `serve`.
pub struct Running {
    pub addr: std::net::SocketAddr,
    /// Where `/metrics` and the health checks are served when
    /// `AGENTIC_METRICS_LISTEN` gives them their own address.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub state: AppState,
    pub shutdown: CancellationToken,
    /// The service the main listener serves, for driving it in process
    /// (tests that need no socket).
    pub service: Router,
    died: Died,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stop taking requests and jobs, drain, and wait until done.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Wait until the server stops by itself (a signal, or a background
    /// task that died, which makes this an error).
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.handle.await.context("server task panicked")?;
        match self.died.get() {
            Some(why) => Err(anyhow::anyhow!("{why}")),
            None => served,
        }
    }

    /// Why the server stopped by itself, while nobody asked it to: a
    /// background task (the worker, the pruner, a listener) ended early.
    pub fn died(&self) -> Option<String> {
        self.died.get().cloned()
    }
}

/// The first background task that ended before shutdown, and how.
type Died = Arc<std::sync::OnceLock<String>>;

/// Run `task` in the background. If it ends (returns or panics) before
/// `shutdown`, that is recorded in `died` and the whole server stops, so
/// that a replica whose worker is gone does not go on accepting deliveries
/// nobody will run; `serve` then exits with an error for its supervisor.
fn supervise<F>(
    name: &'static str,
    task: F,
    shutdown: &CancellationToken,
    died: &Died,
) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (shutdown, died) = (shutdown.clone(), died.clone());
    tokio::spawn(async move {
        let ended = tokio::spawn(task).await;
        if shutdown.is_cancelled() {
            return;
        }
        let why = match ended {
            Ok(()) => format!("{name} ended before shutdown"),
            Err(e) => format!("{name} panicked: {e}"),
        };
        tracing::error!(task = name, "{why}; stopping the server");
        let _ = died.set(why);
        shutdown.cancel();
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::changed();
    })
}

/// Open the store, bind, and run the HTTP server and the worker until
/// `shutdown` is cancelled.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let redactor = crate::redact::Redactor::new(config.secret_values());
    start_with(config, redactor).await
}

/// [`start`] with the redactor the logs already use, so both learn the
/// secrets of an App registered while running.
pub async fn start_with(
    config: Config,
    redactor: crate::redact::Redactor,
) -> anyhow::Result<Running> {
    crate::install_crypto_provider();
    let config = Arc::new(config);
    let migrations = if config.migrate {
        crate::store::Migrations::Apply
    } else {
        crate::store::Migrations::Skip
    };
    let store = Store::connect(&config.database_url, migrations).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("AGENTIC_LISTEN: cannot listen on {}", config.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let metrics_listener = match config.metrics_listen {
        None => None,
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("AGENTIC_METRICS_LISTEN: cannot listen on {at}"))?,
        ),
    };
    let metrics_addr = match &metrics_listener {
        None => None,
        Some(l) => Some(l.local_addr().context("reading the bound address")?),
    };
    let state = AppState::new(store.clone(), config.clone(), redactor)?;
    let shutdown = CancellationToken::new();
    let died = Died::default();
    let worker = supervise(
        "the worker",
        state.worker().run(shutdown.clone()),
        &shutdown,
        &died,
    );
    let pruner = supervise(
        "the pruner",
        prune_in_background(store.clone(), config.retention, shutdown.clone()),
        &shutdown,
        &died,
    );
    let app = match &metrics_listener {
        None => router(state.clone()),
        Some(_) => public_router(state.clone()),
    };
    tracing::info!(%addr, "listening on http://{addr}");
    let metrics_server = metrics_listener.map(|l| {
        let stop = shutdown.clone();
        let app = operator_router(state.clone());
        tracing::info!(addr = ?metrics_addr, "serving /metrics, /healthz and /readyz on their own address");
        let serving = async move {
            if let Err(e) = axum::serve(l, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        };
        supervise("the metrics listener", serving, &shutdown, &died)
    });
    log_how_it_starts(&config, &state, addr);
    let stop = shutdown.clone();
    let service = app.clone();
    let listener_died = died.clone();
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .await
            .context("HTTP server failed");
        if let Err(e) = &served {
            if !stop.is_cancelled() {
                let _ = listener_died.set(format!("{e:#}"));
            }
        }
        // Whatever ended the server ends the worker too.
        stop.cancel();
        if let Some(m) = metrics_server {
            let _ = m.await;
        }
        let _ = worker.await;
        let _ = pruner.await;
        store.close().await;
        tracing::info!("stopped");
        served
    });
    Ok(Running {
        addr,
        metrics_addr,
        state,
        shutdown,
        service,
        died,
        handle,
    })
}

/// What the operator must know at start: the scope ceilings, an apply
/// without a session policy, and the setup link while no App is configured.
fn log_how_it_starts(config: &Config, state: &AppState, addr: std::net::SocketAddr) {
    match &config.policy {
        Some(p) => tracing::info!(
            entries = p.len(),
            "AGENTIC_POLICY_FILE: repositories' AWS scopes are bounded by the operator's ceilings"
        ),
        None => tracing::warn!(
            "no AGENTIC_POLICY_FILE: each repository sets its own AWS scope in .github/agentic.yml (whoever can merge to its default branch decides what it may touch); set a policy file to put ceilings on them"
        ),
    }
    if config.aws_apply_role_arn.is_none() && config.aws_apply_without_session_policy {
        tracing::warn!(
            "AGENTIC_AWS_APPLY_WITHOUT_SESSION_POLICY=true: plans are applied with this process's own AWS credentials, with no session policy limiting them to the approved steps; every plan says so"
        );
    }
    if state.app().is_none() {
        // The only place the setup token is ever shown.
        let base = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        tracing::warn!(
            "no GitHub App is configured: open {base}/?token={} to register one (this link is the only way in; it changes at every start)",
            state.setup.token()
        );
    }
}

/// How often `serve` prunes what retention no longer keeps. Every replica
/// prunes; the deletes are small batches, and two replicas at it at once
/// only find less to delete.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// The first prune waits this long after start, out of the way of a
/// restart's catch-up.
const FIRST_PRUNE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

async fn prune_in_background(
    store: Store,
    retention: crate::store::Retention,
    shutdown: CancellationToken,
) {
    let mut wait = FIRST_PRUNE_AFTER;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        let pruning = store.prune(
            retention,
            crate::store::PRUNE_BATCH,
            crate::store::PRUNE_PAUSE,
            false,
        );
        tokio::select! {
            result = pruning => match result {
                Ok(report) => tracing::info!(?report, "pruned what retention no longer keeps"),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "prune failed; will try again"),
            },
            _ = shutdown.cancelled() => return,
        }
        wait = PRUNE_EVERY;
    }
}

/// `agentic serve`: run until SIGTERM or SIGINT.
pub async fn serve(config: Config, redactor: crate::redact::Redactor) -> anyhow::Result<()> {
    let running = start_with(config, redactor).await?;
    let shutdown = running.shutdown.clone();
    tokio::spawn(reload_on_hangup(running.state.clone(), shutdown.clone()));
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new work; running jobs get the grace period");
        shutdown.cancel();
    });
    running.wait().await
}

/// SIGHUP re-reads `AGENTIC_POLICY_FILE`; a bad file is refused, logged,
/// and the policy in force stays.
async fn reload_on_hangup(state: AppState, shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; the policy file is read at start-up only");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = shutdown.cancelled() => return,
            }
            match state.reload_policy() {
                Ok(entries) => tracing::info!(entries, "AGENTIC_POLICY_FILE reloaded"),
                Err(e) => tracing::error!(
                    error = %e,
                    "AGENTIC_POLICY_FILE: reload refused; the policy in force stays"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (state, shutdown);
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_background_task_that_ends_early_stops_the_server_and_says_why() {
        let shutdown = CancellationToken::new();
        let died = Died::default();
        let task = async { panic!("lost its store") };
        supervise("the worker", task, &shutdown, &died)
            .await
            .unwrap();
        assert!(shutdown.is_cancelled(), "the server is told to stop");
        let why = died.get().expect("the death is recorded");
        assert!(why.starts_with("the worker panicked"), "{why}");

        let shutdown = CancellationToken::new();
        let died = Died::default();
        supervise("the pruner", async {}, &shutdown, &died)
            .await
            .unwrap();
        assert_eq!(
            died.get().map(String::as_str),
            Some("the pruner ended before shutdown")
        );
    }

    #[tokio::test]
    async fn a_background_task_that_ends_at_shutdown_did_not_die() {
        let shutdown = CancellationToken::new();
        let died = Died::default();
        let stop = shutdown.clone();
        let task = supervise(
            "the worker",
            async move { stop.cancelled().await },
            &shutdown,
            &died,
        );
        shutdown.cancel();
        task.await.unwrap();
        assert!(died.get().is_none());
    }
}
