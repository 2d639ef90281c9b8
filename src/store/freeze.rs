//! The operator's switches: the freeze (one row, read at every check, no
//! cache, so every replica honours a change within one step of an apply),
//! and which repository each name belongs to.

use crate::domain::AuditAction;
use anyhow::Context;
use serde::Serialize;
use sqlx::Row;

use super::{insert_audit, now_ms, AuditEntry, Store};

/// A freeze in force: who set it, when (ms since the epoch) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Freeze {
    pub reason: String,
    pub set_by: String,
    pub set_at: i64,
}

impl Store {
    /// The freeze in force, if any.
    pub async fn freeze(&self) -> anyhow::Result<Option<Freeze>> {
        let row = sqlx::query("SELECT reason, set_by, set_at FROM apply_freeze WHERE id = 1")
            .fetch_optional(&self.read)
            .await
            .context("reading the freeze")?;
        Ok(row.map(|r| Freeze {
            reason: r.get("reason"),
            set_by: r.get("set_by"),
            set_at: r.get("set_at"),
        }))
    }

    /// Freeze applies (or replace the reason of a freeze in force), with
    /// its audit record in the same transaction.
    pub async fn set_freeze(&self, reason: &str, by: &str) -> anyhow::Result<Freeze> {
        let now = now_ms();
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        sqlx::query(
            "INSERT INTO apply_freeze (id, reason, set_by, set_at) VALUES (1, $1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET reason = $1, set_by = $2, set_at = $3",
        )
        .bind(reason)
        .bind(by)
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("setting the freeze")?;
        let entry = AuditEntry {
            job_id: None,
            delivery_id: None,
            actor: Some(by.to_string()),
            action: AuditAction::FreezeSet,
            detail: Some(serde_json::json!({ "reason": reason })),
        };
        insert_audit(&mut tx, now, &entry).await?;
        tx.commit().await.context("committing the freeze")?;
        Ok(Freeze {
            reason: reason.to_string(),
            set_by: by.to_string(),
            set_at: now,
        })
    }

    /// Lift the freeze, with its audit record; the freeze that was lifted,
    /// or `None` (and no record) when there was none.
    pub async fn lift_freeze(&self, by: &str) -> anyhow::Result<Option<Freeze>> {
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let row =
            sqlx::query("DELETE FROM apply_freeze WHERE id = 1 RETURNING reason, set_by, set_at")
                .fetch_optional(&mut *tx)
                .await
                .context("lifting the freeze")?;
        let Some(row) = row else {
            tx.rollback().await.context("ending the transaction")?;
            return Ok(None);
        };
        let lifted = Freeze {
            reason: row.get("reason"),
            set_by: row.get("set_by"),
            set_at: row.get("set_at"),
        };
        let entry = AuditEntry {
            job_id: None,
            delivery_id: None,
            actor: Some(by.to_string()),
            action: AuditAction::FreezeLifted,
            detail: Some(serde_json::json!({
                "reason": lifted.reason,
                "set_by": lifted.set_by,
                "set_at": lifted.set_at,
            })),
        };
        insert_audit(&mut tx, now_ms(), &entry).await?;
        tx.commit().await.context("committing the lift")?;
        Ok(Some(lifted))
    }
}

/// What binding a repository's name to its id found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameBinding {
    /// The name is this repository's (bound now, or before).
    Ours,
    /// The name was bound to another repository (its id).
    Other(i64),
}

impl Store {
    /// Bind `name` to repository `id` if it is bound to none; say whose it
    /// is. Names are compared lower-cased, as GitHub does.
    pub async fn bind_repo_name(&self, name: &str, id: i64) -> anyhow::Result<NameBinding> {
        let name = name.to_lowercase();
        sqlx::query(
            "INSERT INTO repo_names (name, repo_id, bound_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&name)
        .bind(id)
        .bind(now_ms())
        .execute(&self.write)
        .await
        .context("binding a repository's name")?;
        let bound: i64 = sqlx::query_scalar("SELECT repo_id FROM repo_names WHERE name = $1")
            .bind(&name)
            .fetch_one(&self.write)
            .await
            .context("reading a repository's name")?;
        Ok(if bound == id {
            NameBinding::Ours
        } else {
            NameBinding::Other(bound)
        })
    }

    /// Forget whose `name` was (the operator confirms a repository that
    /// took over a name), with its audit record; whether there was one.
    pub async fn forget_repo_name(&self, name: &str, by: &str) -> anyhow::Result<bool> {
        let name = name.to_lowercase();
        let mut tx = self.write.begin().await.context("starting a transaction")?;
        let gone = sqlx::query("DELETE FROM repo_names WHERE name = $1")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .context("forgetting a repository's name")?
            .rows_affected()
            > 0;
        if gone {
            let entry = AuditEntry {
                job_id: None,
                delivery_id: None,
                actor: Some(by.to_string()),
                action: AuditAction::RepoNameForgotten,
                detail: Some(serde_json::json!({ "repo": name })),
            };
            insert_audit(&mut tx, now_ms(), &entry).await?;
        }
        tx.commit().await.context("committing")?;
        Ok(gone)
    }
}
