//! The worker's guarantees: dead letters, graceful drain, giving up on a
//! job whose worker keeps dying. (The store's own guarantees, on both
//! backends, are in `store.rs`.)

mod support;

use std::time::Duration;

use agentic::store::{NewDelivery, NewJob, Store};
use support::{delivery_id, fixture, Options, TestApp};

fn job_delivery(id: &str, kind: &str, payload: &str) -> NewDelivery {
    NewDelivery {
        id: id.to_string(),
        event: "pull_request".into(),
        action: Some("opened".into()),
        installation_id: Some(1),
        repo: Some("o/r".into()),
        outcome: "accepted",
        reason: None,
        jobs: vec![NewJob {
            installation_id: 1,
            kind: kind.into(),
            subject: "o/r#1".into(),
            payload: payload.into(),
        }],
    }
}

async fn open_store(dir: &tempfile::TempDir) -> Store {
    Store::open(&format!(
        "sqlite://{}",
        dir.path().join("agentic.db").display()
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn a_job_that_cannot_run_is_dead_with_its_reason() {
    let app = TestApp::start(Options::default()).await;
    app.store()
        .record_delivery(job_delivery("bad-payload", "review", "not json"))
        .await
        .unwrap();
    app.store()
        .record_delivery(job_delivery("bad-kind", "teleport", "{}"))
        .await
        .unwrap();
    app.running.as_ref().unwrap().state.wake.notify_one();
    let jobs = app.wait_for_jobs(2).await;
    assert_eq!(jobs[0].state, "dead");
    assert!(
        jobs[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("stored event does not parse"),
        "{jobs:?}"
    );
    assert_eq!(jobs[1].state, "dead");
    assert_eq!(
        jobs[1].last_error.as_deref(),
        Some("unknown job kind `teleport`")
    );
    assert_eq!(jobs[0].attempts, 1, "a permanent failure is not retried");
    app.stop().await;
}

#[tokio::test]
async fn a_job_whose_worker_keeps_dying_is_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir).await;
    store
        .record_delivery(job_delivery("d1", "review", "{}"))
        .await
        .unwrap();
    // Three workers "die" holding the lease (max attempts is 3 below).
    for _ in 0..3 {
        store
            .lease_job(Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store.close().await;
    let app = TestApp::start_in(dir, Options::default().var("AGENTIC_MAX_ATTEMPTS", "3")).await;
    let jobs = app.wait_for_jobs(1).await;
    assert_eq!(jobs[0].state, "dead");
    assert_eq!(
        jobs[0].last_error.as_deref(),
        Some("gave up after 3 attempts (lease expired)")
    );
    app.stop().await;
}

/// Deliver one issue (an infrastructure task, whose workflow does not
/// exist yet: it only takes `AGENTIC_TEST_JOB_DELAY_MS`) and wait until
/// its job is running.
async fn start_one_job(app: &TestApp) {
    app.deliver("issues", &delivery_id(), &fixture("issues.opened.json"))
        .await;
    support::wait_until("the job to start", || async {
        let jobs = app.store().jobs().await.unwrap();
        (jobs.first().map(|j| j.state.as_str()) == Some("running")).then_some(())
    })
    .await;
}

/// Start a job that takes `delay_ms`, shut down with `grace_secs` to spare,
/// and return the job's state and attempts as stored afterwards.
async fn job_after_shutdown(delay_ms: &str, grace_secs: &str) -> (String, i64) {
    let app = TestApp::start(
        Options::default()
            .var("AGENTIC_TEST_JOB_DELAY_MS", delay_ms)
            .var("AGENTIC_SHUTDOWN_GRACE_SECS", grace_secs),
    )
    .await;
    start_one_job(&app).await;
    let dir = app.stop().await;
    let store = open_store(&dir).await;
    let jobs = store.jobs().await.unwrap();
    store.close().await;
    (jobs[0].state.to_string(), jobs[0].attempts)
}

#[tokio::test]
async fn shutdown_lets_running_jobs_finish_within_the_grace_period() {
    assert_eq!(
        job_after_shutdown("300", "30").await,
        ("done".to_string(), 1)
    );
}

#[tokio::test]
async fn shutdown_hands_back_jobs_that_outlive_the_grace_period() {
    assert_eq!(
        job_after_shutdown("60000", "0").await,
        ("queued".to_string(), 0)
    );
}

#[tokio::test]
async fn an_in_memory_database_is_one_database() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    store
        .record_delivery(job_delivery("d1", "review", "{}"))
        .await
        .unwrap();
    assert_eq!(store.delivery_count().await.unwrap(), 1);
    assert_eq!(store.jobs().await.unwrap().len(), 1);
    assert!(store
        .lease_job(Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
    store.close().await;
}
