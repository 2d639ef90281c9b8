//! Rate limits on commands: per sender and per installation, so one person
//! or one busy organization cannot monopolise the model or trip GitHub's
//! limits for everyone; and the notice window for people without a role,
//! who get at most one reply per window however much they write.
//!
//! The counts live in the store ([`Store::admit`]), so they hold across
//! every replica that shares the database: three replicas allow what one
//! allows, not three times that.

use std::time::Duration;

use crate::store::{Admission, Store};

/// A sender over the limit is told so at most once in this long.
const NOTICE_EVERY: Duration = Duration::from_secs(60);
/// Refusals and replies to people without a role, all of them together, per
/// installation and notice window: a crowd of new accounts costs at most
/// this many posts.
pub const OUTSIDER_NOTICES_PER_WINDOW: u32 = 20;

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
    store: Store,
    pub sender_per_minute: u32,
    installation_per_minute: u32,
    notice_window: Duration,
}

impl CommandLimits {
    pub fn new(
        store: Store,
        sender_per_minute: u32,
        installation_per_minute: u32,
        notice_window: Duration,
    ) -> CommandLimits {
        CommandLimits {
            store,
            sender_per_minute,
            installation_per_minute,
            notice_window,
        }
    }

    /// `per_minute` requests a minute, all of them at once at most.
    async fn per_minute(&self, key: &str, per_minute: u32, cells: u32) -> anyhow::Result<bool> {
        let per_minute = per_minute.max(1);
        let every = Duration::from_secs(60) / per_minute;
        Ok(self.store.admit(key, every, per_minute, cells).await? == Admission::Allowed)
    }

    /// Once per `window`.
    async fn once_per(&self, key: &str, window: Duration) -> anyhow::Result<bool> {
        Ok(self.store.admit(key, window, 1, 1).await? == Admission::Allowed)
    }

    /// May `sender` run `commands` more commands now? Each command counts.
    pub async fn check(
        &self,
        installation: u64,
        sender: &str,
        commands: u32,
    ) -> anyhow::Result<Verdict> {
        let sender = sender.to_lowercase();
        let sender_ok = self
            .per_minute(
                &format!("commands:{installation}:{sender}"),
                self.sender_per_minute,
                commands,
            )
            .await?;
        if sender_ok
            && self
                .per_minute(
                    &format!("commands:{installation}"),
                    self.installation_per_minute,
                    commands,
                )
                .await?
        {
            return Ok(Verdict::Run);
        }
        let first = self
            .once_per(&format!("told:{installation}:{sender}"), NOTICE_EVERY)
            .await?;
        Ok(if first {
            Verdict::TellSender
        } else {
            Verdict::Drop
        })
    }

    /// May the installation start `n` more pieces of model work that no
    /// one person asked for (a failed check's explanation)? They count
    /// against its command rate like commands do.
    pub async fn installation_allows(&self, installation: u64, n: u32) -> anyhow::Result<bool> {
        self.per_minute(
            &format!("commands:{installation}"),
            self.installation_per_minute,
            n,
        )
        .await
    }

    /// May someone be told (again) that they lack the role, or be answered
    /// at all without a role? True at most once per notice window and
    /// sender, and [`OUTSIDER_NOTICES_PER_WINDOW`] times per window and
    /// installation.
    pub async fn notify_refused(&self, installation: u64, sender: &str) -> anyhow::Result<bool> {
        let sender = sender.to_lowercase();
        if !self
            .once_per(
                &format!("outsider:{installation}:{sender}"),
                self.notice_window,
            )
            .await?
        {
            return Ok(false);
        }
        let every = self.notice_window / OUTSIDER_NOTICES_PER_WINDOW;
        Ok(self
            .store
            .admit(
                &format!("outsiders:{installation}"),
                every,
                OUTSIDER_NOTICES_PER_WINDOW,
                1,
            )
            .await?
            == Admission::Allowed)
    }
}
