//! Explanations of failed checks, per pull-request head: what was already
//! explained is never sent to the model again, and the head's one comment
//! is rendered from all of them.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{now_ms, Store};

/// A failed check run, as an explanation names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCheck {
    pub id: u64,
    /// The App that made it (stored since issue 17's last fixes).
    #[serde(default)]
    pub app: Option<u64>,
    pub name: String,
    pub conclusion: String,
}

/// One explanation of one or more failed checks on a head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiExplanation {
    pub checks: Vec<FailedCheck>,
    pub explanation: String,
}

impl Store {
    /// The explanations of head `head_sha` of `repo`, oldest first.
    pub async fn ci_explanations(
        &self,
        repo: &str,
        head_sha: &str,
    ) -> anyhow::Result<Vec<CiExplanation>> {
        let rows = sqlx::query(
            "SELECT checks, explanation FROM ci_explanations WHERE repo = $1 AND head_sha = $2 ORDER BY id",
        )
        .bind(repo)
        .bind(head_sha)
        .fetch_all(&self.write)
        .await
        .context("reading a head's CI explanations")?;
        rows.iter()
            .map(|r| {
                Ok(CiExplanation {
                    checks: serde_json::from_str(&r.get::<String, _>("checks"))
                        .context("a stored CI explanation's checks")?,
                    explanation: r.get("explanation"),
                })
            })
            .collect()
    }

    /// Record what job `job_id` explained on head `head_sha`.
    pub async fn save_ci_explanation(
        &self,
        repo: &str,
        number: u64,
        head_sha: &str,
        explained: &CiExplanation,
        job_id: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO ci_explanations (repo, number, head_sha, checks, explanation, job_id, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(repo)
        .bind(number as i64)
        .bind(head_sha)
        .bind(serde_json::to_string(&explained.checks)?)
        .bind(&explained.explanation)
        .bind(job_id)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .context("recording a CI explanation")?;
        Ok(())
    }

    /// The jobs of `kind` on `subject` that came in before job `id` and
    /// have not ended: (whether it is running, its payload).
    pub async fn earlier_open_jobs(
        &self,
        subject: &str,
        kind: &str,
        id: i64,
    ) -> anyhow::Result<Vec<(bool, String)>> {
        let rows = sqlx::query(
            "SELECT state, payload FROM jobs WHERE subject = $1 AND kind = $2 AND id < $3
                 AND state IN ('queued', 'running')
             ORDER BY CASE WHEN state = 'running' THEN 0 ELSE 1 END, id LIMIT 100",
        )
        .bind(subject)
        .bind(kind)
        .bind(id)
        .fetch_all(&self.write)
        .await
        .context("looking for earlier jobs")?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>("state") == "running", r.get("payload")))
            .collect())
    }
}
