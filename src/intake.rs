//! The intake pipeline shared by the webhook endpoint and `agentic replay`:
//! a verified payload becomes a delivery record and its jobs.

use crate::event::{self, Parsed};
use crate::jobs;
use crate::store::NewDelivery;

/// The longest `X-GitHub-Delivery` we store. GitHub's are GUIDs (36 chars).
pub const MAX_DELIVERY_ID_LEN: usize = 128;

/// What a verified delivery turned into.
#[derive(Debug)]
pub enum Prepared {
    /// `ping`: answered, recorded, no work.
    Ping(NewDelivery),
    /// Work to queue, or a record of why there is none.
    Delivery(NewDelivery),
}

impl Prepared {
    pub fn delivery(&self) -> &NewDelivery {
        match self {
            Prepared::Ping(d) | Prepared::Delivery(d) => d,
        }
    }
    pub fn into_delivery(self) -> NewDelivery {
        match self {
            Prepared::Ping(d) | Prepared::Delivery(d) => d,
        }
    }
}

/// Turn one delivery into what the store keeps.
pub fn prepare(
    event_name: &str,
    delivery_id: &str,
    body: &[u8],
) -> Result<Prepared, event::ParseError> {
    let base = |action, installation_id, repo, outcome, reason, jobs| NewDelivery {
        id: delivery_id.to_string(),
        event: event_name.to_string(),
        action,
        installation_id,
        repo,
        outcome,
        reason,
        jobs,
    };
    Ok(match event::parse(event_name, body)? {
        Parsed::Ping => Prepared::Ping(base(
            None,
            None,
            None,
            "ignored",
            Some("ping".into()),
            vec![],
        )),
        Parsed::Ignored(i) => Prepared::Delivery(base(
            i.action,
            i.installation_id,
            i.repo,
            "ignored",
            Some(i.reason),
            vec![],
        )),
        Parsed::Event(e) => Prepared::Delivery(base(
            Some(e.action().to_string()),
            Some(e.installation_id()),
            e.repo().map(|r| r.full_name.clone()),
            "accepted",
            None,
            jobs::jobs_for(&e),
        )),
    })
}
