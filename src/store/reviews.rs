//! Review runs of pull requests: one row per run, so that a restarted job
//! finds what it already did, a newer push supersedes an older run, and an
//! incremental review knows which commit the last one covered.

use std::collections::{BTreeMap, HashSet};

use anyhow::Context;
use sqlx::Row;

use super::{decode, now_ms, Store};
use crate::domain::ReviewState;

/// A comment the bot keeps one of per pull request and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullComment {
    /// 0 while a post is in flight.
    pub id: u64,
    /// What it last said, hashed.
    pub body_hash: Option<String>,
}

/// One review run, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRun {
    pub id: i64,
    pub repo: String,
    pub number: u64,
    pub head_sha: String,
    pub job_id: i64,
    pub trigger: String,
    pub state: ReviewState,
    /// The commit an incremental review compared from; `None` for a full one.
    pub base_sha: Option<String>,
    pub check_run_id: Option<u64>,
    /// GitHub's id of the review this run posted.
    pub review_id: Option<u64>,
    /// Fingerprints of the inline comments this run posted.
    pub fingerprints: Vec<String>,
    pub detail: Option<String>,
    /// Path → hash of the file's changed lines at `head_sha` (`None` for
    /// runs stored before this was kept).
    pub file_hashes: Option<BTreeMap<String, String>>,
    /// Severity → count of the findings this run reported.
    pub findings: Option<BTreeMap<String, u64>>,
    /// The pull request's walkthrough as this run left it.
    pub walkthrough: Option<crate::domain::Walkthrough>,
}

/// What starting a run found.
#[derive(Debug, Clone)]
pub enum ReviewStart {
    /// A new run (or this job's own run again, on a retry), and the older
    /// runs of the same pull request it superseded: their check runs are
    /// the caller's to close as cancelled.
    Started {
        run: ReviewRun,
        superseded: Vec<ReviewRun>,
    },
    /// A run for a newer request of the same pull request exists: this
    /// one is recorded as cancelled and does nothing.
    Outdated { newer: ReviewRun },
}

const COLUMNS: &str = "id, repo, number, head_sha, job_id, trigger, state, base_sha, check_run_id, review_id, fingerprints, detail, file_hashes, findings, walkthrough";

fn run_of(r: &sqlx::any::AnyRow) -> anyhow::Result<ReviewRun> {
    let fingerprints: String = r.get("fingerprints");
    Ok(ReviewRun {
        id: r.get("id"),
        repo: r.get("repo"),
        number: r.get::<i64, _>("number") as u64,
        head_sha: r.get("head_sha"),
        job_id: r.get("job_id"),
        trigger: r.get("trigger"),
        state: decode(r, "state")?,
        base_sha: r.get("base_sha"),
        check_run_id: r.get::<Option<i64>, _>("check_run_id").map(|v| v as u64),
        review_id: r.get::<Option<i64>, _>("review_id").map(|v| v as u64),
        fingerprints: fingerprints
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        detail: r.get("detail"),
        file_hashes: r
            .get::<Option<String>, _>("file_hashes")
            .and_then(|j| serde_json::from_str(&j).ok()),
        findings: r
            .get::<Option<String>, _>("findings")
            .and_then(|j| serde_json::from_str(&j).ok()),
        walkthrough: r
            .get::<Option<String>, _>("walkthrough")
            .and_then(|j| serde_json::from_str(&j).ok()),
    })
}

/// The states of a run that is still working.
fn active(state: ReviewState) -> bool {
    matches!(state, ReviewState::Running | ReviewState::Posting)
}

impl Store {
    /// Start (or, for a retried job, resume) the review run of `job_id` on
    /// `repo#number` at `head_sha`. Runs of the same pull request by older
    /// jobs that are still working are marked cancelled (superseded) in the
    /// same transaction; if a newer job already has a run, this one is
    /// recorded as cancelled instead. Jobs are ordered by id, which is the
    /// order GitHub's deliveries were received in.
    pub async fn start_review(
        &self,
        job_id: i64,
        repo: &str,
        number: u64,
        head_sha: &str,
        trigger: &str,
    ) -> anyhow::Result<ReviewStart> {
        let now = now_ms();
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        // A write first: SQLite's lock is taken by it, not upgraded later.
        sqlx::query(
            "INSERT INTO reviews (repo, number, head_sha, job_id, trigger, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $7, $6, $6) ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(head_sha)
        .bind(job_id)
        .bind(trigger)
        .bind(now)
        .bind(ReviewState::Running.as_str())
        .execute(&mut *tx)
        .await
        .context("recording a review run")?;
        let own = sqlx::query(&format!("SELECT {COLUMNS} FROM reviews WHERE job_id = $1"))
            .bind(job_id)
            .fetch_one(&mut *tx)
            .await
            .context("reading a review run")?;
        let mut run = run_of(&own)?;
        let newer = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reviews WHERE repo = $1 AND number = $2 AND job_id > $3
             ORDER BY job_id DESC LIMIT 1"
        ))
        .bind(repo)
        .bind(number as i64)
        .bind(job_id)
        .fetch_optional(&mut *tx)
        .await
        .context("looking for a newer review run")?;
        if let Some(newer) = newer {
            let newer = run_of(&newer)?;
            if active(run.state) {
                sqlx::query(
                    "UPDATE reviews SET state = $4, detail = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(format!(
                    "superseded by the review run of job {}",
                    newer.job_id
                ))
                .bind(now)
                .bind(run.id)
                .bind(ReviewState::Cancelled.as_str())
                .execute(&mut *tx)
                .await
                .context("cancelling an outdated review run")?;
            }
            tx.commit().await.context("committing a review run")?;
            return Ok(ReviewStart::Outdated { newer });
        }
        if !active(run.state) {
            // This job's run already ended (a retry after the end was
            // recorded, or it was superseded meanwhile).
            tx.commit().await.context("committing a review run")?;
            return Ok(ReviewStart::Started {
                run,
                superseded: vec![],
            });
        }
        let superseded = sqlx::query(&format!(
            "UPDATE reviews SET state = $6, detail = $1, updated_at = $2
             WHERE repo = $3 AND number = $4 AND job_id < $5 AND state IN ($7, $8)
             RETURNING {COLUMNS}"
        ))
        .bind(format!("superseded by the review run of job {job_id}"))
        .bind(now)
        .bind(repo)
        .bind(number as i64)
        .bind(job_id)
        .bind(ReviewState::Cancelled.as_str())
        .bind(ReviewState::Running.as_str())
        .bind(ReviewState::Posting.as_str())
        .fetch_all(&mut *tx)
        .await
        .context("superseding older review runs")?
        .iter()
        .map(run_of)
        .collect::<anyhow::Result<_>>()?;
        // A retry may run against a newer head than its first attempt saw.
        if run.head_sha != head_sha {
            sqlx::query("UPDATE reviews SET head_sha = $1, updated_at = $2 WHERE id = $3")
                .bind(head_sha)
                .bind(now)
                .bind(run.id)
                .execute(&mut *tx)
                .await
                .context("updating a review run")?;
            run.head_sha = head_sha.to_string();
        }
        tx.commit().await.context("committing a review run")?;
        Ok(ReviewStart::Started { run, superseded })
    }

    /// A run as it is now.
    pub async fn review_run(&self, id: i64) -> anyhow::Result<Option<ReviewRun>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM reviews WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.write)
            .await
            .context("reading a review run")?;
        row.as_ref().map(run_of).transpose()
    }

    /// Every run of a pull request, oldest first.
    pub async fn review_runs(&self, repo: &str, number: u64) -> anyhow::Result<Vec<ReviewRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reviews WHERE repo = $1 AND number = $2 ORDER BY id"
        ))
        .bind(repo)
        .bind(number as i64)
        .fetch_all(&self.write)
        .await
        .context("reading review runs")?;
        rows.iter().map(run_of).collect()
    }

    /// The last run of a pull request that finished a review (posted one,
    /// or found nothing to post): where an incremental review starts from.
    pub async fn last_review(&self, repo: &str, number: u64) -> anyhow::Result<Option<ReviewRun>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reviews WHERE repo = $1 AND number = $2 AND state = $3
             ORDER BY id DESC LIMIT 1"
        ))
        .bind(repo)
        .bind(number as i64)
        .bind(ReviewState::Done.as_str())
        .fetch_optional(&self.write)
        .await
        .context("reading the last review")?;
        row.as_ref().map(run_of).transpose()
    }

    /// The pull request a review run of `repo` looked at `head_sha` for
    /// (the newest such run), if any.
    pub async fn review_number_at(
        &self,
        repo: &str,
        head_sha: &str,
    ) -> anyhow::Result<Option<u64>> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT number FROM reviews WHERE repo = $1 AND head_sha = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(repo)
        .bind(head_sha)
        .fetch_optional(&self.read)
        .await
        .context("finding a reviewed pull request by head")?;
        Ok(n.map(|n| n as u64))
    }

    /// Fingerprints of every inline comment posted on a pull request.
    pub async fn review_fingerprints(
        &self,
        repo: &str,
        number: u64,
    ) -> anyhow::Result<HashSet<String>> {
        Ok(self
            .review_runs(repo, number)
            .await?
            .into_iter()
            .flat_map(|r| r.fingerprints)
            .collect())
    }

    /// Record the run's check run.
    pub async fn set_review_check_run(&self, id: i64, check_run_id: u64) -> anyhow::Result<()> {
        self.update_review(
            "UPDATE reviews SET check_run_id = $1, updated_at = $2 WHERE id = $3",
            check_run_id as i64,
            id,
        )
        .await
    }

    /// Record the commit an incremental review compares from.
    pub async fn set_review_base(&self, id: i64, base_sha: Option<&str>) -> anyhow::Result<()> {
        sqlx::query("UPDATE reviews SET base_sha = $1, updated_at = $2 WHERE id = $3")
            .bind(base_sha)
            .bind(now_ms())
            .bind(id)
            .execute(&self.write)
            .await
            .context("recording a review's base")?;
        Ok(())
    }

    /// Record the hashes of the files this run looks at (path → hash of
    /// the file's changed lines at its head).
    pub async fn set_review_file_hashes(
        &self,
        id: i64,
        hashes: &BTreeMap<String, String>,
    ) -> anyhow::Result<()> {
        self.set_review_json(id, "file_hashes", serde_json::to_string(hashes)?)
            .await
    }

    /// Record what this run found (severity → count), before its review is
    /// posted, so a recovered run concludes its check run from it.
    pub async fn set_review_findings(
        &self,
        id: i64,
        findings: &BTreeMap<String, u64>,
    ) -> anyhow::Result<()> {
        self.set_review_json(id, "findings", serde_json::to_string(findings)?)
            .await
    }

    /// Record the pull request's walkthrough as this run leaves it, before
    /// anything is posted, so a recovered run can still show it.
    pub async fn set_review_walkthrough(
        &self,
        id: i64,
        walkthrough: &crate::domain::Walkthrough,
    ) -> anyhow::Result<()> {
        self.set_review_json(id, "walkthrough", serde_json::to_string(walkthrough)?)
            .await
    }

    /// The walkthrough the newest earlier run of this pull request (before
    /// run `before`) that finished its review left, if any did.
    pub async fn last_walkthrough(
        &self,
        repo: &str,
        number: u64,
        before: i64,
    ) -> anyhow::Result<Option<crate::domain::Walkthrough>> {
        let json: Option<String> = sqlx::query_scalar(
            "SELECT walkthrough FROM reviews WHERE repo = $1 AND number = $2 AND id < $3
               AND state = $4 AND walkthrough IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(before)
        .bind(ReviewState::Done.as_str())
        .fetch_optional(&self.write)
        .await
        .context("reading the last walkthrough")?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// The id of the comment of `kind` the bot keeps on pull request
    /// `number` (`Some(0)` while its post is in flight).
    pub async fn pull_comment(
        &self,
        repo: &str,
        number: u64,
        kind: &str,
    ) -> anyhow::Result<Option<PullComment>> {
        let row = sqlx::query(
            "SELECT comment_id, body_hash FROM pull_comments WHERE repo = $1 AND number = $2 AND kind = $3",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(kind)
        .fetch_optional(&self.write)
        .await
        .context("reading a pull request's comment")?;
        Ok(row.map(|r| PullComment {
            id: r.get::<i64, _>("comment_id") as u64,
            body_hash: r.get("body_hash"),
        }))
    }

    /// Remember the comment of `kind` on pull request `number` (0: one is
    /// about to be posted) and the hash of what it says (`None`: unknown).
    pub async fn save_pull_comment(
        &self,
        repo: &str,
        number: u64,
        kind: &str,
        comment_id: u64,
        body_hash: Option<&str>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO pull_comments (repo, number, kind, comment_id, body_hash, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (repo, number, kind) DO UPDATE SET comment_id = excluded.comment_id,
                 body_hash = excluded.body_hash, updated_at = excluded.updated_at",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(kind)
        .bind(comment_id as i64)
        .bind(body_hash)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .context("recording a pull request's comment")?;
        Ok(())
    }

    /// Record that `by` dismissed the findings `fingerprints` on pull
    /// request `number`: they are not raised there again.
    pub async fn dismiss_findings(
        &self,
        repo: &str,
        number: u64,
        fingerprints: &[String],
        by: &str,
    ) -> anyhow::Result<()> {
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        for fingerprint in fingerprints {
            sqlx::query(
                "INSERT INTO dismissed_findings (repo, number, fingerprint, dismissed_by, at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repo, number, fingerprint) DO NOTHING",
            )
            .bind(repo)
            .bind(number as i64)
            .bind(fingerprint)
            .bind(by)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .context("recording a dismissed finding")?;
        }
        tx.commit().await.context("committing dismissed findings")?;
        Ok(())
    }

    /// The fingerprints of the findings dismissed on pull request `number`.
    pub async fn dismissed_findings(&self, repo: &str, number: u64) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT fingerprint FROM dismissed_findings WHERE repo = $1 AND number = $2",
        )
        .bind(repo)
        .bind(number as i64)
        .fetch_all(&self.write)
        .await
        .context("reading dismissed findings")
    }

    /// Set one of a run's JSON columns (named by us, never by input).
    async fn set_review_json(
        &self,
        id: i64,
        column: &'static str,
        json: String,
    ) -> anyhow::Result<()> {
        sqlx::query(&format!(
            "UPDATE reviews SET {column} = $1, updated_at = $2 WHERE id = $3"
        ))
        .bind(json)
        .bind(now_ms())
        .bind(id)
        .execute(&self.write)
        .await
        .with_context(|| format!("recording a review's {column}"))?;
        Ok(())
    }

    /// Move a working run to `posting` (its review is about to be sent),
    /// unless it was cancelled meanwhile: `false` then, and nothing is sent.
    pub async fn begin_review_post(&self, id: i64) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE reviews SET state = $3, updated_at = $1 WHERE id = $2 AND state IN ($4, $3)",
        )
        .bind(now_ms())
        .bind(id)
        .bind(ReviewState::Posting.as_str())
        .bind(ReviewState::Running.as_str())
        .execute(&self.write)
        .await
        .context("recording a review's intent to post")?;
        Ok(r.rows_affected() == 1)
    }

    /// Record the review GitHub took, with the fingerprints of its inline
    /// comments.
    pub async fn record_review_posted(
        &self,
        id: i64,
        review_id: u64,
        fingerprints: &[String],
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE reviews SET review_id = $1, fingerprints = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(review_id as i64)
        .bind(fingerprints.join(" "))
        .bind(now_ms())
        .bind(id)
        .execute(&self.write)
        .await
        .context("recording a posted review")?;
        Ok(())
    }

    /// End a run in `state` (done, skipped, failed, cancelled), with why.
    /// A run already cancelled stays cancelled.
    pub async fn finish_review(
        &self,
        id: i64,
        state: ReviewState,
        detail: Option<&str>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE reviews SET state = $1, detail = $2, updated_at = $3
             WHERE id = $4 AND state <> $5",
        )
        .bind(state.as_str())
        .bind(detail)
        .bind(now_ms())
        .bind(id)
        .bind(ReviewState::Cancelled.as_str())
        .execute(&self.write)
        .await
        .context("finishing a review run")?;
        Ok(())
    }

    async fn update_review(&self, sql: &str, value: i64, id: i64) -> anyhow::Result<()> {
        sqlx::query(sql)
            .bind(value)
            .bind(now_ms())
            .bind(id)
            .execute(&self.write)
            .await
            .context("updating a review run")?;
        Ok(())
    }
}
