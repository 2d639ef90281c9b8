//! The store's guarantees, each checked on both backends (SQLite and
//! PostgreSQL) with the same test: dedupe, leases and fencing, fair and
//! exclusive leasing by concurrent replicas, the shared rate limits,
//! retention, operator retries, and the two schemas kept in step.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use agentic::domain::{AuditAction, PlanStatus, ReviewState};
use agentic::store::{Admission, Migrations, NewDelivery, NewJob, Retention, Store};
use support::{postgres_db, sqlite_db, test_dbs, TestDb};

fn delivery(id: &str, installation: u64, kind: &str) -> NewDelivery {
    NewDelivery {
        id: id.to_string(),
        event: "pull_request".into(),
        action: Some("opened".into()),
        installation_id: Some(installation),
        repo: Some("o/r".into()),
        outcome: "accepted",
        reason: None,
        jobs: vec![NewJob {
            installation_id: installation,
            kind: kind.into(),
            subject: "o/r#1".into(),
            payload: "{}".into(),
        }],
    }
}

async fn open(db: &TestDb) -> Store {
    Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", db.backend))
}

#[tokio::test]
async fn an_expired_lease_is_taken_again_and_the_old_holder_cannot_finish() {
    for db in test_dbs().await {
        let store = open(&db).await;
        store
            .record_delivery(delivery("d1", 1, "review"))
            .await
            .unwrap();
        let first = store
            .lease_job(Duration::from_millis(400))
            .await
            .unwrap()
            .expect("a job");
        assert_eq!(first.attempts, 1, "{}", db.backend);
        assert!(
            store
                .lease_job(Duration::from_secs(60))
                .await
                .unwrap()
                .is_none(),
            "{}: leased jobs are not handed out twice",
            db.backend
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let taken = store
            .lease_jobs(Duration::from_secs(60), 4, 4)
            .await
            .unwrap();
        assert_eq!(taken.takeovers, 1, "{}: a takeover is counted", db.backend);
        let second = &taken.jobs[0];
        assert_eq!(
            (second.id, second.attempts),
            (first.id, 2),
            "{}",
            db.backend
        );
        assert!(
            !store.complete_job(&first).await.unwrap(),
            "{}: the old lease holder lost the job",
            db.backend
        );
        assert!(!store.holds_lease(&first).await.unwrap(), "{}", db.backend);
        assert!(store.holds_lease(second).await.unwrap(), "{}", db.backend);
        assert!(store.complete_job(second).await.unwrap(), "{}", db.backend);
        assert_eq!(
            store.audit_actions(first.id).await.unwrap(),
            ["job.completed"],
            "{}",
            db.backend
        );
        store.close().await;
    }
}

#[tokio::test]
async fn retry_waits_defer_does_not_count_and_release_hands_back() {
    for db in test_dbs().await {
        let store = open(&db).await;
        store
            .record_delivery(delivery("d1", 1, "review"))
            .await
            .unwrap();
        let job = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let later = agentic::store::now_ms() + 60_000;
        assert!(store
            .retry_job(&job, later, "GitHub answered 502")
            .await
            .unwrap());
        assert!(
            store
                .lease_job(Duration::from_secs(60))
                .await
                .unwrap()
                .is_none(),
            "{}: not before run_after",
            db.backend
        );
        assert_eq!(
            store.next_due().await.unwrap(),
            Some(later),
            "{}",
            db.backend
        );
        let row = &store.jobs().await.unwrap()[0];
        assert_eq!(
            (row.state.as_str(), row.last_error.as_deref(), row.attempts),
            ("queued", Some("GitHub answered 502"), 1),
            "{}",
            db.backend
        );

        store
            .record_delivery(delivery("d2", 1, "review"))
            .await
            .unwrap();
        let job2 = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(store.defer_job(&job2, 0, "rate limited").await.unwrap());
        let again = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.id, again.attempts),
            (job2.id, 1),
            "{}: a wait is not an attempt",
            db.backend
        );
        assert!(store.release_job(&again).await.unwrap());
        let again = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (job2.id, 1), "{}", db.backend);
        store.close().await;
    }
}

#[tokio::test]
async fn concurrent_duplicates_are_stored_once() {
    for db in test_dbs().await {
        let store = open(&db).await;
        let ids: Vec<String> = (0..200).map(|i| format!("dup-{i}")).collect();
        let all = ids
            .iter()
            .chain(ids.iter())
            .map(|id| store.record_delivery(delivery(id, 1, "review")));
        let outcomes = futures::future::join_all(all).await;
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(agentic::store::DeliveryOutcome::Stored)))
            .count();
        assert_eq!(stored, 200, "{}", db.backend);
        assert_eq!(store.delivery_count().await.unwrap(), 200, "{}", db.backend);
        assert_eq!(store.jobs().await.unwrap().len(), 200, "{}", db.backend);
        store.close().await;
    }
}

/// Two replicas (two stores on one database) lease at once: every job is
/// taken exactly once.
#[tokio::test]
async fn replicas_leasing_at_once_never_take_the_same_job() {
    for db in test_dbs().await {
        let a = open(&db).await;
        let b = Store::connect(&db.url, Migrations::Skip).await.unwrap();
        for i in 0..300 {
            a.record_delivery(delivery(&format!("d{i}"), i % 7, "review"))
                .await
                .unwrap();
        }
        let take = |store: Store| async move {
            let mut mine = Vec::new();
            loop {
                let leased = store
                    .lease_jobs(Duration::from_secs(60), 8, 100)
                    .await
                    .unwrap();
                if leased.jobs.is_empty() {
                    break;
                }
                mine.extend(leased.jobs.into_iter().map(|j| j.id));
            }
            mine
        };
        let (x, y) = tokio::join!(take(a.clone()), take(b.clone()));
        let all: HashSet<i64> = x.iter().chain(y.iter()).copied().collect();
        assert_eq!(
            x.len() + y.len(),
            300,
            "{}: {} + {}",
            db.backend,
            x.len(),
            y.len()
        );
        assert_eq!(all.len(), 300, "{}: no job leased twice", db.backend);
        b.close().await;
        a.close().await;
    }
}

/// Installations take turns, and one never runs more than its cap.
#[tokio::test]
async fn leasing_takes_installations_in_turn_within_their_cap() {
    for db in test_dbs().await {
        let store = open(&db).await;
        for i in 0..10 {
            store
                .record_delivery(delivery(&format!("a{i}"), 1, "review"))
                .await
                .unwrap();
        }
        store
            .record_delivery(delivery("b0", 2, "review"))
            .await
            .unwrap();
        store
            .record_delivery(delivery("c0", 3, "review"))
            .await
            .unwrap();
        let lease = |max| store.lease_jobs(Duration::from_secs(60), max, 2);
        let installation = |id: &str| id.as_bytes()[0];
        let first: Vec<u8> = lease(1)
            .await
            .unwrap()
            .jobs
            .iter()
            .map(|j| installation(&j.delivery_id))
            .collect();
        assert_eq!(first, [b'a'], "{}: the oldest first", db.backend);
        let next: Vec<u8> = lease(2)
            .await
            .unwrap()
            .jobs
            .iter()
            .map(|j| installation(&j.delivery_id))
            .collect();
        assert_eq!(
            next,
            [b'b', b'c'],
            "{}: then the ones not served yet",
            db.backend
        );
        let rest = lease(10).await.unwrap().jobs;
        assert_eq!(
            rest.len(),
            1,
            "{}: installation 1 is at its cap of 2",
            db.backend
        );
        assert!(lease(10).await.unwrap().jobs.is_empty(), "{}", db.backend);
        store.close().await;
    }
}

/// The shared limiter: a burst, then one per interval, the wait said, and
/// two replicas counting against one limit.
#[tokio::test]
async fn rate_limits_hold_across_replicas() {
    for db in test_dbs().await {
        let a = open(&db).await;
        let b = Store::connect(&db.url, Migrations::Skip).await.unwrap();
        let minute = Duration::from_secs(60);
        let mut allowed = 0;
        for i in 0..10 {
            let store = if i % 2 == 0 { &a } else { &b };
            if store.admit("sender:1:bob", minute / 3, 3, 1).await.unwrap() == Admission::Allowed {
                allowed += 1;
            }
        }
        assert_eq!(
            allowed, 3,
            "{}: three a minute, whichever replica asks",
            db.backend
        );
        match a.admit("sender:1:bob", minute / 3, 3, 1).await.unwrap() {
            Admission::Wait(w) => assert!(
                w > Duration::from_secs(15) && w <= Duration::from_secs(20),
                "{}: {w:?}",
                db.backend
            ),
            other => panic!("{}: {other:?}", db.backend),
        }
        assert_eq!(
            a.admit("sender:1:carol", minute / 3, 3, 3).await.unwrap(),
            Admission::Allowed,
            "{}: another key, a batch of three",
            db.backend
        );
        b.close().await;
        a.close().await;
    }
}

#[tokio::test]
async fn an_operator_can_requeue_a_dead_job() {
    for db in test_dbs().await {
        let store = open(&db).await;
        store
            .record_delivery(delivery("d1", 1, "review"))
            .await
            .unwrap();
        let job = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(store.kill_job(&job, "GitHub answered 404").await.unwrap());
        assert_eq!(
            store
                .jobs_in_state(agentic::domain::JobState::Dead)
                .await
                .unwrap()
                .len(),
            1,
            "{}",
            db.backend
        );
        assert!(
            store.requeue_dead(job.id, "operator").await.unwrap(),
            "{}",
            db.backend
        );
        assert!(
            !store.requeue_dead(job.id, "operator").await.unwrap(),
            "{}: only dead jobs",
            db.backend
        );
        let again = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (job.id, 1), "{}", db.backend);
        assert_eq!(
            store.audit_actions(job.id).await.unwrap(),
            ["job.dead", "job.requeued"],
            "{}",
            db.backend
        );
        store.close().await;
    }
}

/// Old finished jobs go with their outputs and claims; deliveries stay at
/// least as long as GitHub can redeliver them; running work is never
/// touched; a dry run counts what a real one deletes.
#[tokio::test]
async fn retention_prunes_what_is_old_and_finished_only() {
    use sqlx::Connection;
    for db in test_dbs().await {
        let store = open(&db).await;
        for id in ["old-done", "old-running", "new-done"] {
            store
                .record_delivery(delivery(id, 1, "review"))
                .await
                .unwrap();
        }
        let jobs = store
            .lease_jobs(Duration::from_secs(600), 3, 3)
            .await
            .unwrap()
            .jobs;
        for j in &jobs {
            store
                .save_output(j.id, "status-comment", "issue_comment", 7)
                .await
                .unwrap();
            store
                .claim_command(900 + j.id as u64, "Help #1", j.id)
                .await
                .unwrap();
        }
        assert!(store.complete_job(&jobs[0]).await.unwrap());
        assert!(store.complete_job(&jobs[2]).await.unwrap());
        // Two review runs, both untouched for 40 days: one ended, one
        // still working (never pruned).
        for (job, number) in [(1000, 1), (1001, 2)] {
            store
                .start_review(job, "acme/x", number, "abc", "auto")
                .await
                .unwrap();
        }
        let ended = store.review_runs("acme/x", 1).await.unwrap()[0].id;
        store
            .finish_review(ended, ReviewState::Done, None)
            .await
            .unwrap();
        // The first two deliveries came 40 days ago; the first job finished
        // 20 days ago (a retry); the audit records are 40 days old.
        let day = 24 * 3600 * 1000i64;
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        for (sql, days) in [
            ("UPDATE jobs SET finished_at = finished_at - $1 WHERE delivery_id = 'old-done'", 20),
            ("UPDATE deliveries SET received_at = received_at - $1 WHERE id IN ('old-done', 'old-running')", 40),
            ("UPDATE audit SET at = at - $1", 40),
            ("UPDATE reviews SET updated_at = updated_at - $1", 40),
        ] {
            sqlx::query(sql).bind(days * day).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
        let keep = Retention {
            days: 7,
            audit_days: 30,
        };
        let dry = store.prune(keep, 2, Duration::ZERO, true).await.unwrap();
        let done = store.prune(keep, 2, Duration::ZERO, false).await.unwrap();
        assert_eq!(
            dry, done,
            "{}: a dry run counts what a real one deletes",
            db.backend
        );
        assert_eq!(
            (done.jobs, done.outputs, done.command_runs, done.deliveries),
            (1, 1, 1, 1),
            "{}",
            db.backend
        );
        assert!(done.audit >= 1, "{}", db.backend);
        assert_eq!(done.reviews, 1, "{}", db.backend);
        assert!(store.review_runs("acme/x", 1).await.unwrap().is_empty());
        assert_eq!(store.review_runs("acme/x", 2).await.unwrap().len(), 1);
        let left: Vec<String> = store
            .jobs()
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.delivery_id)
            .collect();
        assert_eq!(left, ["old-running", "new-done"], "{}", db.backend);
        assert!(
            store.delivery("old-done").await.unwrap().is_none(),
            "{}",
            db.backend
        );
        assert!(
            store.delivery("old-running").await.unwrap().is_some(),
            "{}: its job runs",
            db.backend
        );
        // A delivery 20 days old is kept for redelivery even with 7 days'
        // retention.
        store
            .record_delivery(NewDelivery {
                jobs: vec![],
                outcome: "ignored",
                ..delivery("ignored", 1, "x")
            })
            .await
            .unwrap();
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE deliveries SET received_at = received_at - $1 WHERE id = 'ignored'")
            .bind(20 * 24 * 3600 * 1000i64)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let again = store.prune(keep, 100, Duration::ZERO, false).await.unwrap();
        assert_eq!(again.deliveries, 0, "{}", db.backend);
        assert_eq!(
            store
                .record_delivery(NewDelivery {
                    jobs: vec![],
                    outcome: "ignored",
                    ..delivery("ignored", 1, "x")
                })
                .await
                .unwrap(),
            agentic::store::DeliveryOutcome::Duplicate,
            "{}: still deduplicated",
            db.backend
        );
        store.close().await;
    }
}

/// Both schemas have the same tables with the same columns, and their
/// migrations the same versions: one backend cannot drift from the other.
#[tokio::test]
async fn the_two_schemas_are_kept_in_step() {
    let sqlite = sqlite_db();
    let postgres = postgres_db().await;
    open(&sqlite).await.close().await;
    open(&postgres).await.close().await;

    let columns = |rows: Vec<(String, String)>| {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (table, column) in rows {
            if !table.starts_with("_sqlx") && table != "sqlite_sequence" {
                map.entry(table).or_default().push(column);
            }
        }
        map.values_mut().for_each(|c| c.sort());
        map
    };
    let pool = sqlx::SqlitePool::connect(&sqlite.url).await.unwrap();
    let lite: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let lite_versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let pg = sqlx::PgPool::connect(&postgres.url).await.unwrap();
    let post: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(&pg)
    .await
    .unwrap();
    let pg_versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pg)
            .await
            .unwrap();
    assert_eq!(columns(lite), columns(post));
    assert_eq!(lite_versions, pg_versions);
    // The migration files themselves: the same names on both sides.
    let names = |dir: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

/// Several replicas starting at once all migrate safely.
#[tokio::test]
async fn replicas_starting_at_once_migrate_once() {
    let db = postgres_db().await;
    let starts = (0..4).map(|_| Store::open(&db.url));
    for store in futures::future::join_all(starts).await {
        store.expect("every replica opens").close().await;
    }
    assert_eq!(
        Store::migrate(&db.url).await.unwrap(),
        0,
        "nothing left to apply"
    );
}

/// Review runs: a newer job's run supersedes an older one that is still
/// working; an older job that starts late finds the newer run and stops; a
/// retried job finds its own run; a run cancelled meanwhile cannot post.
#[tokio::test]
async fn review_runs_supersede_by_job_order_on_both_backends() {
    use agentic::store::ReviewStart;
    for db in test_dbs().await {
        let store = open(&db).await;
        let first = match store
            .start_review(10, "acme/x", 7, "aaa", "auto")
            .await
            .unwrap()
        {
            ReviewStart::Started { run, superseded } => {
                assert!(superseded.is_empty(), "{}", db.backend);
                run
            }
            other => panic!("{}: {other:?}", db.backend),
        };
        store.set_review_check_run(first.id, 501).await.unwrap();
        // The job retried: the same run again.
        match store
            .start_review(10, "acme/x", 7, "aaa", "auto")
            .await
            .unwrap()
        {
            ReviewStart::Started { run, .. } => assert_eq!(run.id, first.id, "{}", db.backend),
            other => panic!("{}: {other:?}", db.backend),
        }
        // A newer push: the first run is superseded, with its check run.
        let second = match store
            .start_review(12, "acme/x", 7, "bbb", "auto")
            .await
            .unwrap()
        {
            ReviewStart::Started { run, superseded } => {
                assert_eq!(superseded.len(), 1, "{}", db.backend);
                assert_eq!(superseded[0].check_run_id, Some(501), "{}", db.backend);
                run
            }
            other => panic!("{}: {other:?}", db.backend),
        };
        assert!(
            !store.begin_review_post(first.id).await.unwrap(),
            "{}: a cancelled run cannot post",
            db.backend
        );
        // An older job that starts only now: the newer run wins.
        match store
            .start_review(11, "acme/x", 7, "aaa", "auto")
            .await
            .unwrap()
        {
            ReviewStart::Outdated { newer } => assert_eq!(newer.job_id, 12, "{}", db.backend),
            other => panic!("{}: {other:?}", db.backend),
        }
        // Another pull request is not touched.
        match store
            .start_review(13, "acme/x", 8, "ccc", "auto")
            .await
            .unwrap()
        {
            ReviewStart::Started { superseded, .. } => assert!(superseded.is_empty()),
            other => panic!("{}: {other:?}", db.backend),
        }
        assert!(store.begin_review_post(second.id).await.unwrap());
        store
            .record_review_posted(second.id, 9001, &["f1".into(), "f2".into()])
            .await
            .unwrap();
        store
            .finish_review(second.id, ReviewState::Done, None)
            .await
            .unwrap();
        let last = store.last_review("acme/x", 7).await.unwrap().unwrap();
        assert_eq!(
            (last.head_sha.as_str(), last.review_id),
            ("bbb", Some(9001))
        );
        let states: Vec<String> = store
            .review_runs("acme/x", 7)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.state.to_string())
            .collect();
        assert_eq!(states, ["cancelled", "done", "cancelled"], "{}", db.backend);
        assert_eq!(
            store.review_fingerprints("acme/x", 7).await.unwrap().len(),
            2,
            "{}",
            db.backend
        );
        store.close().await;
    }
}

/// Resource locks of plans: all of a plan's resources or none, and free
/// again once released.
#[tokio::test]
async fn plan_locks_are_all_or_nothing_on_both_backends() {
    for db in test_dbs().await {
        let store = open(&db).await;
        let r = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            store
                .lock_resources(1, &r(&["ec2:a", "ec2:b"]))
                .await
                .unwrap(),
            Ok(())
        );
        assert_eq!(
            store.lock_resources(1, &r(&["ec2:a"])).await.unwrap(),
            Ok(()),
            "{}: its own lock",
            db.backend
        );
        assert_eq!(
            store
                .lock_resources(2, &r(&["ec2:c", "ec2:b"]))
                .await
                .unwrap(),
            Err(1),
            "{}",
            db.backend
        );
        // `ec2:c` was not kept: plan 3 takes it.
        assert_eq!(
            store.lock_resources(3, &r(&["ec2:c"])).await.unwrap(),
            Ok(()),
            "{}",
            db.backend
        );
        store.unlock_resources(1).await.unwrap();
        assert_eq!(
            store.lock_resources(2, &r(&["ec2:b"])).await.unwrap(),
            Ok(()),
            "{}",
            db.backend
        );
        store.close().await;
    }
}

/// Starting an apply takes the plan and its locks in one transaction, and
/// ending it releases them with its audit record: two jobs racing for one
/// plan leave exactly one applying it, and the loser changes nothing.
#[tokio::test]
async fn an_apply_starts_and_ends_in_one_transaction_on_both_backends() {
    use agentic::store::{ApplyStart, AuditEntry};
    for db in test_dbs().await {
        let store = open(&db).await;
        let step = |resource: &str| agentic::plan::PlanStep {
            service: "ec2".into(),
            action: "StopInstances".parse().unwrap(),
            region: Some("eu-west-1".into()),
            resource: resource.into(),
            arguments: serde_json::json!({ "instance_ids": [resource] }),
            risk: agentic::domain::RiskTier::Write,
        };
        let mut plans = Vec::new();
        for (job, resource) in [(501, "i-a"), (502, "i-a")] {
            plans.push(
                store
                    .create_plan(
                        job,
                        "o/r",
                        7,
                        ("bob", 42),
                        None,
                        &[step(resource)],
                        i64::MAX,
                    )
                    .await
                    .unwrap(),
            );
        }
        let keys = vec!["ec2:eu-west-1:i-a".to_string()];
        let b = &db.backend;
        assert_eq!(
            store.begin_apply(plans[0], 11, &keys).await.unwrap(),
            ApplyStart::Started,
            "{b}"
        );
        assert_eq!(
            store.begin_apply(plans[0], 12, &keys).await.unwrap(),
            ApplyStart::NotWaiting,
            "{b}: the loser"
        );
        assert_eq!(
            store.plan_locks(plans[0]).await.unwrap(),
            keys,
            "{b}: the winner keeps its locks"
        );
        assert_eq!(
            store.plan(plans[0]).await.unwrap().unwrap().apply_job_id,
            Some(11),
            "{b}"
        );
        assert_eq!(
            store.begin_apply(plans[1], 13, &keys).await.unwrap(),
            ApplyStart::Locked(plans[0]),
            "{b}"
        );
        let plan = store.plan(plans[1]).await.unwrap().unwrap();
        assert_eq!(
            plan.status, "proposed",
            "{b}: a locked-out plan changed nothing"
        );
        assert_eq!(plan.requester_id, Some(42), "{b}");
        let audit = |action: AuditAction| AuditEntry {
            job_id: None,
            delivery_id: None,
            actor: Some("bob".into()),
            action,
            detail: None,
        };
        assert!(
            !store
                .end_apply(
                    plans[0],
                    Some(12),
                    PlanStatus::Applied,
                    &audit(AuditAction::PlanApplyRefused)
                )
                .await
                .unwrap(),
            "{b}: only its job ends it"
        );
        assert_eq!(store.plan_locks(plans[0]).await.unwrap(), keys, "{b}");
        assert!(
            store
                .end_apply(
                    plans[0],
                    Some(11),
                    PlanStatus::Applied,
                    &audit(AuditAction::PlanApplied)
                )
                .await
                .unwrap(),
            "{b}"
        );
        assert!(store.plan_locks(plans[0]).await.unwrap().is_empty(), "{b}");
        assert_eq!(
            store.plan(plans[0]).await.unwrap().unwrap().status,
            "applied",
            "{b}"
        );
        let actions: Vec<String> = store
            .audit_log(None, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .filter(|a| a.starts_with("plan."))
            .collect();
        assert_eq!(
            actions,
            ["plan.applied"],
            "{b}: the audit record came with the change"
        );
        assert_eq!(
            store.begin_apply(plans[1], 13, &keys).await.unwrap(),
            ApplyStart::Started,
            "{b}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn cancel_ends_queued_jobs_and_flags_running_ones_on_both_backends() {
    for db in test_dbs().await {
        let store = open(&db).await;
        for (i, kind) in ["review", "command", "installation", "command"]
            .iter()
            .enumerate()
        {
            store
                .record_delivery(delivery(&format!("d{i}"), 1, kind))
                .await
                .unwrap();
        }
        // The review (job 1) runs; the rest wait.
        let running = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(running.kind, "review", "{}", db.backend);
        let jobs = store.jobs().await.unwrap();
        let cancel_job = jobs[3].id;
        let hit = store
            .request_cancel("o/r#1", cancel_job, "bob")
            .await
            .unwrap();
        let seen: Vec<(i64, bool)> = hit.iter().map(|j| (j.id, j.was_running)).collect();
        // The installation job and the cancel's own job are not touched.
        assert_eq!(
            seen,
            [(jobs[0].id, true), (jobs[1].id, false)],
            "{}",
            db.backend
        );
        assert_eq!(
            store.cancel_requested(&running).await.unwrap().as_deref(),
            Some("bob"),
            "{}",
            db.backend
        );
        let after = store.jobs().await.unwrap();
        assert_eq!(after[1].state, "done", "{}", db.backend);
        assert_eq!(
            after[1].last_error.as_deref(),
            Some("cancelled by @bob"),
            "{}",
            db.backend
        );
        assert_eq!(after[2].state, "queued", "{}", db.backend);
        assert!(store.finish_cancelled(&running, "bob").await.unwrap());
        let ended = store.jobs().await.unwrap();
        assert_eq!(
            (ended[0].state.as_str(), ended[0].last_error.as_deref()),
            ("done", Some("cancelled by @bob")),
            "{}",
            db.backend
        );
        // Asked twice: nothing new.
        assert!(store
            .request_cancel("o/r#1", cancel_job, "bob")
            .await
            .unwrap()
            .is_empty());
    }
}

#[tokio::test]
async fn cancel_jobs_are_leased_past_the_caps_and_only_once_on_both_backends() {
    for db in test_dbs().await {
        let store = open(&db).await;
        for (i, kind) in ["command", "cancel", "command"].iter().enumerate() {
            store
                .record_delivery(delivery(&format!("u{i}"), 1, kind))
                .await
                .unwrap();
        }
        let lease = Duration::from_secs(60);
        // The installation's one slot is taken by the first job.
        let first = store.lease_jobs(lease, 4, 1).await.unwrap().jobs;
        assert_eq!(first.len(), 1, "{}", db.backend);
        assert!(store.lease_jobs(lease, 4, 1).await.unwrap().jobs.is_empty());
        let urgent = store.lease_urgent(lease, 4).await.unwrap();
        assert_eq!(
            urgent.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>(),
            ["cancel"],
            "{}",
            db.backend
        );
        assert!(store.lease_urgent(lease, 4).await.unwrap().is_empty());
    }
}

/// Every stored word of `agentic::domain` is written through the store's
/// own methods and read back as the same variant, on both backends: the
/// spelling the code binds is the spelling it decodes.
#[tokio::test]
async fn every_stored_word_round_trips_on_both_backends() {
    use agentic::domain::{Code, JobKind, JobState, Role, StepState};
    use agentic::plan::Approval;
    use agentic::store::{AuditEntry, ReviewStart};
    for db in test_dbs().await {
        let b = db.backend;
        let store = open(&db).await;
        // Job kinds, through intake.
        for (i, kind) in JobKind::ALL.iter().enumerate() {
            store
                .record_delivery(delivery(&format!("k{i}"), 1, kind.as_str()))
                .await
                .unwrap();
        }
        let kinds: Vec<JobKind> = store
            .jobs()
            .await
            .unwrap()
            .iter()
            .map(|j| JobKind::decode(&j.kind).unwrap())
            .collect();
        assert_eq!(kinds, JobKind::ALL, "{b}");
        // Job states, through a lease and each way a job ends.
        let queued = store.jobs_in_state(JobState::Queued).await.unwrap();
        assert_eq!(queued.len(), JobKind::ALL.len(), "{b}");
        let leased = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a job");
        assert_eq!(
            store.jobs_in_state(JobState::Running).await.unwrap()[0].id,
            leased.id,
            "{b}"
        );
        assert!(store.complete_job(&leased).await.unwrap(), "{b}");
        let second = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a job");
        assert!(store.kill_job(&second, "x").await.unwrap(), "{b}");
        let _running = store
            .lease_job(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a job");
        for state in JobState::ALL {
            assert!(
                store
                    .jobs_in_state(state)
                    .await
                    .unwrap()
                    .iter()
                    .all(|j| j.state == state),
                "{b}: {state}"
            );
            assert!(
                !store.jobs_in_state(state).await.unwrap().is_empty(),
                "{b}: no job is {state}"
            );
        }
        // Plan statuses, step states and roles, through the plan methods.
        let mut ended = Vec::new();
        for (i, to) in [
            PlanStatus::Applied,
            PlanStatus::Failed,
            PlanStatus::Cancelled,
        ]
        .into_iter()
        .enumerate()
        {
            let job = 100 + i as i64;
            let id = store
                .create_plan(job, "o/r", 1, ("ann", 7), None, &[], i64::MAX)
                .await
                .unwrap();
            assert_eq!(
                store.plan(id).await.unwrap().unwrap().status,
                PlanStatus::Proposed,
                "{b}"
            );
            store.begin_apply(id, job, &[]).await.unwrap();
            assert_eq!(
                store.plan(id).await.unwrap().unwrap().status,
                PlanStatus::Applying,
                "{b}"
            );
            let entry = AuditEntry {
                job_id: None,
                delivery_id: None,
                actor: None,
                action: AuditAction::PlanApplied,
                detail: None,
            };
            assert!(store.end_apply(id, Some(job), to, &entry).await.unwrap());
            ended.push(store.plan(id).await.unwrap().unwrap().status);
        }
        assert_eq!(
            ended,
            [
                PlanStatus::Applied,
                PlanStatus::Failed,
                PlanStatus::Cancelled
            ],
            "{b}"
        );
        for (n, state) in StepState::ALL.iter().enumerate() {
            store
                .record_step(1, n as i64 + 1, *state, None)
                .await
                .unwrap();
        }
        let steps: Vec<StepState> = store
            .plan_step_runs(1)
            .await
            .unwrap()
            .iter()
            .map(|r| r.state)
            .collect();
        assert_eq!(steps, StepState::ALL, "{b}");
        for (n, role) in Role::ALL.iter().enumerate() {
            let approval = Approval {
                approver_id: n as u64 + 1,
                approver: format!("p{n}"),
                role: *role,
                hash: "h".into(),
                head_sha: None,
            };
            store.approve_plan(1, &approval).await.unwrap();
        }
        let mut roles: Vec<Role> = store
            .plan_approvals(1)
            .await
            .unwrap()
            .iter()
            .map(|a| a.role)
            .collect();
        roles.sort();
        assert_eq!(roles, Role::ALL, "{b}");
        // Review states, through a run's life.
        let mut seen = Vec::new();
        for (i, end) in [
            ReviewState::Done,
            ReviewState::Skipped,
            ReviewState::Failed,
            ReviewState::Cancelled,
        ]
        .into_iter()
        .enumerate()
        {
            let ReviewStart::Started { run, .. } = store
                .start_review(200 + i as i64, "o/r", 10 + i as u64, "sha", "opened")
                .await
                .unwrap()
            else {
                panic!("{b}: a new run starts");
            };
            seen.push(run.state);
            assert!(store.begin_review_post(run.id).await.unwrap(), "{b}");
            seen.push(store.review_run(run.id).await.unwrap().unwrap().state);
            store.finish_review(run.id, end, None).await.unwrap();
            seen.push(store.review_run(run.id).await.unwrap().unwrap().state);
        }
        for state in ReviewState::ALL {
            assert!(seen.contains(&state), "{b}: {state} never read back");
        }
        // Audit actions, written and read back by name.
        for action in AuditAction::ALL {
            store
                .audit(AuditEntry {
                    job_id: None,
                    delivery_id: None,
                    actor: None,
                    action,
                    detail: None,
                })
                .await
                .unwrap();
        }
        let logged: std::collections::HashSet<AuditAction> = store
            .audit_log(None, None, 1000)
            .await
            .unwrap()
            .iter()
            .map(|r| AuditAction::decode(&r.action).unwrap())
            .collect();
        for action in AuditAction::ALL {
            assert!(logged.contains(&action), "{b}: {action}");
        }
        store.close().await;
    }
}
