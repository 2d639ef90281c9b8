//! Prometheus metrics, rendered in the text exposition format at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::Store;

/// What became of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Accepted,
    Duplicate,
    Rejected,
    Ignored,
}

impl DeliveryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Accepted => "accepted",
            DeliveryOutcome::Duplicate => "duplicate",
            DeliveryOutcome::Rejected => "rejected",
            DeliveryOutcome::Ignored => "ignored",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    kind: &'static str,
    result: &'static str,
}

/// The job states the store uses.
const JOB_STATES: [&str; 4] = ["queued", "running", "done", "dead"];

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<OutcomeLabels, Counter>,
    intake_seconds: Histogram,
    jobs: Family<StateLabels, Gauge>,
    attempts: Family<AttemptLabels, Counter>,
    takeovers: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "agentic_webhook_deliveries",
            "Webhook deliveries by outcome",
            deliveries.clone(),
        );
        // From 0.25 ms to ~4 s: intake should sit in the first few buckets.
        let intake_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.00025, 2.0, 15),
        );
        registry.register(
            "agentic_webhook_intake_duration_seconds",
            "Time from request to answer for webhook deliveries, durable commit included",
            intake_seconds.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register("agentic_jobs", "Jobs in the store by state", jobs.clone());
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "agentic_job_attempts",
            "Job attempts by kind and result (done, retry, deferred, dead, released, lease_lost)",
            attempts.clone(),
        );
        let takeovers = Counter::default();
        registry.register(
            "agentic_lease_takeovers",
            "Jobs this process leased after another worker's lease ran out (it died or stalled)",
            takeovers.clone(),
        );
        for outcome in [
            DeliveryOutcome::Accepted,
            DeliveryOutcome::Duplicate,
            DeliveryOutcome::Rejected,
            DeliveryOutcome::Ignored,
        ] {
            // Present from the start, so a scrape shows every outcome at 0.
            let _ = deliveries.get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            });
        }
        Metrics {
            registry,
            deliveries,
            intake_seconds,
            jobs,
            attempts,
            takeovers,
        }
    }

    /// Jobs leased after another worker's lease ran out.
    pub fn takeovers(&self, n: usize) {
        self.takeovers.inc_by(n as u64);
    }

    /// A delivery that was refused before it was verified: counted, but
    /// kept out of the latency histogram (it did no intake work).
    pub fn rejected(&self) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: DeliveryOutcome::Rejected.as_str(),
            })
            .inc();
    }

    /// A delivery that was verified and answered after `seconds`.
    pub fn delivery(&self, outcome: DeliveryOutcome, seconds: f64) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
        self.intake_seconds.observe(seconds);
    }

    pub fn attempt(&self, kind: &'static str, result: &'static str) {
        self.attempts
            .get_or_create(&AttemptLabels { kind, result })
            .inc();
    }

    /// Render the text format, reading job counts from the store first.
    pub async fn render(&self, store: &Store) -> anyhow::Result<String> {
        let counts = store.job_counts().await?;
        for state in JOB_STATES {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            self.jobs.get_or_create(&StateLabels { state }).set(n);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
