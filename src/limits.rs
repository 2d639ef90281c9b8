//! Rate limits on commands: per sender and per installation, so one person
//! or one busy organization cannot monopolise the model or trip GitHub's
//! limits for everyone; and the notice window for people without a role,
//! who get at most one reply per window however much they write.
//!
//! The state is in this process (a replica bounds its own senders).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota};

/// A sender over the limit is told so at most once in this long.
const NOTICE_EVERY: Duration = Duration::from_secs(60);
/// Replies to people without a role, all of them together, per installation
/// and notice window: a crowd of new accounts costs at most this many posts.
pub const OUTSIDER_NOTICES_PER_WINDOW: u32 = 20;
/// Most senders remembered by a notice map; past it the map is emptied
/// (a flood of new accounts cannot grow memory without bound).
const MAX_REMEMBERED: usize = 100_000;

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
    /// People without a role who were answered, and when.
    outsiders: Mutex<HashMap<(u64, String), Instant>>,
    outsider_notices: DefaultKeyedRateLimiter<u64>,
    notice_window: Duration,
    pub sender_per_minute: u32,
}

/// Remember `key` at most once per `window`: true the first time.
fn first_in_window(
    map: &Mutex<HashMap<(u64, String), Instant>>,
    key: (u64, String),
    window: Duration,
) -> bool {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.retain(|_, at| at.elapsed() < window);
    if map.len() >= MAX_REMEMBERED {
        map.clear();
    }
    match map.entry(key) {
        std::collections::hash_map::Entry::Occupied(_) => false,
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(Instant::now());
            true
        }
    }
}

impl CommandLimits {
    pub fn new(
        sender_per_minute: u32,
        installation_per_minute: u32,
        notice_window: Duration,
    ) -> CommandLimits {
        let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        CommandLimits {
            per_sender: DefaultKeyedRateLimiter::keyed(Quota::per_minute(nz(sender_per_minute))),
            per_installation: DefaultKeyedRateLimiter::keyed(Quota::per_minute(nz(
                installation_per_minute,
            ))),
            told: Mutex::new(HashMap::new()),
            outsiders: Mutex::new(HashMap::new()),
            outsider_notices: DefaultKeyedRateLimiter::keyed(
                Quota::with_period(notice_window / OUTSIDER_NOTICES_PER_WINDOW)
                    .unwrap_or_else(|| Quota::per_hour(nz(OUTSIDER_NOTICES_PER_WINDOW)))
                    .allow_burst(nz(OUTSIDER_NOTICES_PER_WINDOW)),
            ),
            notice_window,
            sender_per_minute,
        }
    }

    /// May `sender` run `commands` more commands now? Each command counts.
    pub fn check(&self, installation: u64, sender: &str, commands: u32) -> Verdict {
        let key = (installation, sender.to_lowercase());
        let n = NonZeroU32::new(commands).unwrap_or(NonZeroU32::MIN);
        let ok = |r: Result<Result<(), _>, _>| matches!(r, Ok(Ok(())));
        if ok(self.per_sender.check_key_n(&key, n))
            && ok(self.per_installation.check_key_n(&installation, n))
        {
            return Verdict::Run;
        }
        if first_in_window(&self.told, key, NOTICE_EVERY) {
            Verdict::TellSender
        } else {
            Verdict::Drop
        }
    }

    /// May someone without a role be answered now? True at most once per
    /// notice window and sender, and [`OUTSIDER_NOTICES_PER_WINDOW`] times
    /// per window and installation.
    pub fn notify_outsider(&self, installation: u64, sender: &str) -> bool {
        first_in_window(
            &self.outsiders,
            (installation, sender.to_lowercase()),
            self.notice_window,
        ) && self.outsider_notices.check_key(&installation).is_ok()
    }
}
