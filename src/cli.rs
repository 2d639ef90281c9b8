//! The command line: `serve`, `replay`, `manifest`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::intake::{self, Prepared};
use crate::server::AppState;
use crate::store::{DeliveryOutcome, Store};

#[derive(Debug, Parser)]
#[command(
    name = "agentic",
    version,
    about = "A GitHub App for reviews and guarded AWS changes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook server and the worker (setup page if no App is configured).
    Serve,
    /// Feed a saved webhook payload through the same pipeline as the server.
    Replay {
        /// The payload file (the JSON body GitHub sent).
        payload: PathBuf,
        /// The event name, as in the X-GitHub-Event header.
        #[arg(long)]
        event: String,
        /// Delivery id to record; a new random one by default. Reusing an
        /// id is deduplicated exactly as a GitHub redelivery is.
        #[arg(long)]
        delivery_id: Option<String>,
        /// Show what would be stored and queued, and touch nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the GitHub App manifest as JSON.
    Manifest {
        /// The URL GitHub reaches this service at (default AGENTIC_PUBLIC_URL).
        #[arg(long)]
        public_url: Option<String>,
    },
}

/// Run a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => {
            let config = Config::from_env()?;
            crate::telemetry::init(config.log_format);
            crate::server::serve(config).await
        }
        Command::Manifest { public_url } => {
            let public_url = match public_url {
                Some(u) => u,
                None => Config::from_env()?
                    .public_url
                    .unwrap_or_else(|| "http://localhost:3000".to_string()),
            };
            let manifest = crate::manifest::manifest_json(&public_url)?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(())
        }
        Command::Replay {
            payload,
            event,
            delivery_id,
            dry_run,
        } => replay(payload, event, delivery_id, dry_run).await,
    }
}

async fn replay(
    path: PathBuf,
    event: String,
    delivery_id: Option<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let body = std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let delivery_id = delivery_id.unwrap_or_else(|| format!("replay-{}", uuid::Uuid::new_v4()));
    if delivery_id.is_empty() || delivery_id.len() > intake::MAX_DELIVERY_ID_LEN {
        anyhow::bail!(
            "--delivery-id must be 1 to {} characters",
            intake::MAX_DELIVERY_ID_LEN
        );
    }
    let prepared = intake::prepare(&event, &delivery_id, &body)
        .with_context(|| format!("`{}`", path.display()))?;
    let d = prepared.delivery();
    println!(
        "delivery {} ({} {})",
        d.id,
        d.event,
        d.action.as_deref().unwrap_or("-")
    );
    match (&prepared, &d.reason) {
        (Prepared::Ping(_), _) => println!("  ping: nothing to do"),
        (_, Some(reason)) => println!("  ignored: {reason}"),
        _ => {}
    }
    for job in &d.jobs {
        println!("  job {} for {}", job.kind, job.subject);
    }
    if dry_run {
        println!("dry run: nothing stored");
        return Ok(());
    }
    let config = Config::from_env()?;
    crate::telemetry::init(config.log_format);
    let store = Store::open(&config.database_url).await?;
    let delivery = prepared.into_delivery();
    match store.record_delivery(delivery).await? {
        DeliveryOutcome::Duplicate => {
            println!("already stored: delivery {delivery_id} was received before; nothing queued");
        }
        DeliveryOutcome::Stored => {
            let state = AppState::new(store.clone(), std::sync::Arc::new(config));
            state.worker().run_until_idle().await?;
        }
    }
    for job in store.jobs_for_delivery(&delivery_id).await? {
        match &job.last_error {
            Some(e) => println!(
                "  job {} {}: {} after {} attempt(s): {e}",
                job.id, job.kind, job.state, job.attempts
            ),
            None => println!(
                "  job {} {}: {} after {} attempt(s)",
                job.id, job.kind, job.state, job.attempts
            ),
        }
    }
    store.close().await;
    Ok(())
}
