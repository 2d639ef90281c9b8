//! The words the rest of the code shares, at the bottom of the house: what
//! a job is and where it stands, where a plan, a step and a review stand,
//! a person's role, a risk tier, a finding's severity, a job's stop signal,
//! and what the audit log records. Nothing here does I/O or imports
//! another module of this crate, so every module may use it.
//!
//! Each stored word is spelled once, here ([`Code`]): the store writes
//! `as_str()` as a bound parameter and reads it back with [`Code::decode`],
//! so a typo is a compile error and an unknown word in the database is an
//! error naming it, never a silent mismatch.

use std::fmt;

/// A word the store keeps: its one spelling, and every variant (so a test
/// can show each one survives a round trip through both backends).
pub trait Code: Copy + Eq + fmt::Debug + Sized + 'static {
    /// Every variant.
    const ALL: &'static [Self];
    /// What this type is, for errors ("a job state").
    const WHAT: &'static str;

    /// The stored spelling.
    fn as_str(self) -> &'static str;

    /// The variant spelled `s`, if any.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }

    /// The variant spelled `s`, or an error naming what was found.
    fn decode(s: &str) -> anyhow::Result<Self> {
        Self::parse(s).ok_or_else(|| anyhow::anyhow!("unknown {} `{s}` in the store", Self::WHAT))
    }
}

/// Define a word: the enum (ordered as declared, weakest first where that
/// means something), its one spelling each, every variant in `ALL`,
/// `Display`, and equality with a `&str` (so `row.state == "done"` still
/// reads naturally).
macro_rules! code {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $spelling:literal,)+ }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $(#[$meta])*
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl Code for $name {
            const ALL: &'static [Self] = &$name::ALL;
            const WHAT: &'static str = $what;

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $spelling,)+
                }
            }
        }

        impl $name {
            /// Every variant, in order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant,)+];

            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                Code::as_str(self)
            }

            /// The variant spelled `s`, if any.
            pub fn parse(s: &str) -> Option<Self> {
                <Self as Code>::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}

/// Serde for words only the store and our own JSON carry: as their
/// spelling, and an unknown one named.
macro_rules! serde_as_spelled {
    ($($name:ident),+) => {$(
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} `{s}`", <$name as Code>::WHAT))
                })
            }
        }
    )+};
}

code! {
    /// What a job does. The worker dispatches on it with an exhaustive
    /// match, so a new kind does not compile until it is handled.
    JobKind, "job kind" {
        /// `/agentic …` in an issue or pull-request comment.
        Command = "command",
        /// Automatic review of a pull request that opened or got new commits.
        Review = "review",
        /// An infrastructure task started from an issue.
        InfraTask = "infra_task",
        /// A check run's button, or a re-run request.
        CheckRunAction = "check_run_action",
        /// Another App's or GitHub Actions' check run failed on a pull
        /// request's head: explain why, once per head.
        CiExplain = "ci_explain",
        /// The App was installed or uninstalled.
        Installation = "installation",
        /// A comment whose only command is `/agentic cancel`: leased ahead of
        /// the queue and outside the concurrency caps, since what it stops
        /// may be what fills them.
        Cancel = "cancel",
    }
}

code! {
    /// Where a job stands in the queue.
    JobState, "job state" {
        /// Waiting for a worker (or for its `run_after`).
        Queued = "queued",
        /// Leased by a worker.
        Running = "running",
        /// Finished.
        Done = "done",
        /// Given up on: out of attempts, or a permanent error.
        Dead = "dead",
    }
}

code! {
    /// Where a plan stands.
    PlanStatus, "plan status" {
        /// Waiting for approvals and an apply.
        Proposed = "proposed",
        /// An apply holds it (and its locks).
        Applying = "applying",
        /// Every step ran.
        Applied = "applied",
        /// A step failed or was refused; the apply stopped there.
        Failed = "failed",
        /// Withdrawn, or its apply stopped on request.
        Cancelled = "cancelled",
    }
}

impl PlanStatus {
    /// The plan has ended: nothing more will run from it.
    pub fn ended(self) -> bool {
        matches!(
            self,
            PlanStatus::Applied | PlanStatus::Failed | PlanStatus::Cancelled
        )
    }
}

code! {
    /// What one step of an apply did.
    StepState, "step state" {
        /// Started: it may have happened.
        Running = "running",
        Done = "done",
        Failed = "failed",
    }
}

code! {
    /// Where one review run of a pull request stands.
    ReviewState, "review state" {
        Running = "running",
        /// The review's POST may have happened.
        Posting = "posting",
        Done = "done",
        /// Nothing to review, or the configuration says not to.
        Skipped = "skipped",
        /// Superseded by a newer run, or stopped on request.
        Cancelled = "cancelled",
        Failed = "failed",
    }
}

code! {
    /// What the audit log records. `job.completed` and `job.dead` are
    /// written by the store's trigger in the statement that finishes a job.
    AuditAction, "audit action" {
        CommandRefused = "command.refused",
        DescribeUpdated = "describe.updated",
        FreezeSet = "freeze.set",
        FreezeLifted = "freeze.lifted",
        JobCancelRequested = "job.cancel_requested",
        JobCancelled = "job.cancelled",
        JobCompleted = "job.completed",
        JobDead = "job.dead",
        JobDeferred = "job.deferred",
        JobLeaseLost = "job.lease_lost",
        JobRequeued = "job.requeued",
        JobRetry = "job.retry",
        LlmCall = "llm.call",
        LlmMalformed = "llm.malformed",
        LlmSubmitted = "llm.submitted",
        PlanApplied = "plan.applied",
        PlanApplyCancelled = "plan.apply_cancelled",
        PlanApplyPaused = "plan.apply_paused",
        PlanApplyRefused = "plan.apply_refused",
        PlanApplyStarted = "plan.apply_started",
        FindingDismissed = "finding.dismissed",
        PlanApplyTakenOver = "plan.apply_taken_over",
        PlanApprovalRefused = "plan.approval_refused",
        PlanApproved = "plan.approved",
        PlanCancelRequested = "plan.cancel_requested",
        PlanCancelled = "plan.cancelled",
        PlanCloseNotCancelling = "plan.close_not_cancelling",
        PlanCreated = "plan.created",
        PlanRefused = "plan.refused",
        PlanStepApplied = "plan.step_applied",
        PlanStepFailed = "plan.step_failed",
        RepoNameForgotten = "repo.name_forgotten",
        ReviewPosted = "review.posted",
        ReviewRerunRefused = "review.rerun_refused",
        ReviewSuperseded = "review.superseded",
        ToolCall = "tool.call",
        ToolSkipped = "tool.skipped",
    }
}

code! {
    /// A user's role on a repository, weakest first, by the lower-case names
    /// a repository's settings use (`min_role: maintain`). Read from
    /// settings by serde's derive, whose spelling is the same.
    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    Role, "role" {
        /// Not a collaborator.
        None = "none",
        Read = "read",
        Triage = "triage",
        Write = "write",
        Maintain = "maintain",
        Admin = "admin",
    }
}

impl Role {
    /// From the permission API's `role_name` (custom roles fall back to the
    /// base `permission`).
    pub fn from_api(role_name: Option<&str>, permission: &str) -> Role {
        let parse = |s: &str| match s {
            "push" => Some(Role::Write),
            "pull" => Some(Role::Read),
            other => Role::parse(other),
        };
        role_name
            .and_then(parse)
            .or_else(|| parse(permission))
            .unwrap_or(Role::None)
    }
}

code! {
    /// What a tool or a plan step can do to the world, least severe first.
    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    RiskTier, "risk tier" {
        /// Looks only: list, describe, get.
        Read = "read",
        /// Changes something reversible: start, stop, tag, create.
        Write = "write",
        /// Deletes, terminates, changes IAM, or makes data public.
        Destructive = "destructive",
    }
}

code! {
    /// How serious a finding is, weakest first.
    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    Severity, "severity" {
        Nit = "nit",
        Minor = "minor",
        Major = "major",
        Critical = "critical",
    }
}

impl Severity {
    /// How a severity is shown ("Major").
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "Critical",
            Severity::Major => "Major",
            Severity::Minor => "Minor",
            Severity::Nit => "Nit",
        }
    }
}

serde_as_spelled!(
    JobKind,
    JobState,
    PlanStatus,
    StepState,
    ReviewState,
    AuditAction
);

/// A running job's stop signal: `/agentic cancel` flags the job in the
/// store, the worker running it sees the flag and signals this, with who
/// asked. Most work is dropped at once; an apply and a review look at it
/// where stopping is safe (between steps; while the model thinks).
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    token: tokio_util::sync::CancellationToken,
    by: std::sync::Arc<std::sync::OnceLock<String>>,
}

impl Cancel {
    /// Ask the job to stop, on behalf of `by`; the first caller wins.
    pub fn cancel(&self, by: &str) {
        let _ = self.by.set(by.to_string());
        self.token.cancel();
    }

    /// Who asked the job to stop, once someone has.
    pub fn requested_by(&self) -> Option<&str> {
        self.by.get().map(String::as_str)
    }

    /// Wait until someone asks the job to stop; who.
    pub async fn requested(&self) -> String {
        self.token.cancelled().await;
        self.by.get().cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spellings_round_trip<T: Code>() {
        let mut seen = std::collections::HashSet::new();
        for v in T::ALL {
            assert!(seen.insert(v.as_str()), "{} spelled twice", v.as_str());
            assert_eq!(T::decode(v.as_str()).unwrap(), *v);
        }
        assert!(T::decode("no-such-word").is_err());
    }

    #[test]
    fn every_word_has_one_spelling_that_reads_back() {
        spellings_round_trip::<JobKind>();
        spellings_round_trip::<JobState>();
        spellings_round_trip::<PlanStatus>();
        spellings_round_trip::<StepState>();
        spellings_round_trip::<ReviewState>();
        spellings_round_trip::<AuditAction>();
        spellings_round_trip::<Role>();
        spellings_round_trip::<RiskTier>();
        spellings_round_trip::<Severity>();
    }

    #[test]
    fn serde_spells_as_the_store_does() {
        for r in RiskTier::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for s in Severity::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for r in Role::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(
            serde_json::from_str::<JobKind>("\"infra_task\"").unwrap(),
            JobKind::InfraTask
        );
        assert!(serde_json::from_str::<PlanStatus>("\"nope\"").is_err());
    }
}

/// What one file of a pull request changes, in a few words: a row of the
/// walkthrough (`submit_review`'s `walkthrough`, as the model wrote it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileChange {
    pub path: String,
    pub change: String,
}

/// A file a review left out, and why, in people's words.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeftOut {
    pub path: String,
    pub why: String,
}

/// A pull request's walkthrough as of one review run: the overview, what
/// each file changes, and what the review left out. Each run stores its
/// own, merged with the runs before it (an incremental run only sees the
/// files that changed since).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Walkthrough {
    pub overview: String,
    pub files: Vec<FileChange>,
    pub left_out: Vec<LeftOut>,
}
