//! Rate limits on commands: per sender and per installation, so one person
//! or one busy organization cannot monopolise the model or trip GitHub's
//! limits for everyone.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota};

/// A sender over the limit is told so at most once in this long.
const NOTICE_EVERY: Duration = Duration::from_secs(60);

/// What to do with a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Run,
    /// Over the limit; tell the sender (first time in a while).
    TellSender,
    /// Over the limit and already told.
    Drop,
}

pub struct CommandLimits {
    per_sender: DefaultKeyedRateLimiter<(u64, String)>,
    per_installation: DefaultKeyedRateLimiter<u64>,
    told: Mutex<HashMap<(u64, String), Instant>>,
    pub sender_per_minute: u32,
}

impl CommandLimits {
    pub fn new(sender_per_minute: u32, installation_per_minute: u32) -> CommandLimits {
        let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        CommandLimits {
            per_sender: DefaultKeyedRateLimiter::keyed(Quota::per_minute(nz(sender_per_minute))),
            per_installation: DefaultKeyedRateLimiter::keyed(Quota::per_minute(nz(
                installation_per_minute,
            ))),
            told: Mutex::new(HashMap::new()),
            sender_per_minute,
        }
    }

    pub fn check(&self, installation: u64, sender: &str) -> Verdict {
        let key = (installation, sender.to_lowercase());
        if self.per_sender.check_key(&key).is_ok()
            && self.per_installation.check_key(&installation).is_ok()
        {
            return Verdict::Run;
        }
        let mut told = self.told.lock().unwrap_or_else(|p| p.into_inner());
        told.retain(|_, at| at.elapsed() < NOTICE_EVERY);
        match told.entry(key) {
            std::collections::hash_map::Entry::Occupied(_) => Verdict::Drop,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Instant::now());
                Verdict::TellSender
            }
        }
    }
}
