//! The real binary, killed with SIGKILL while jobs run, then restarted:
//! every delivery is kept and every job completes exactly once.

mod support;

use agentic::store::Store;
use support::{delivery_id, fixture, poll_until, sign, SECRET};

fn spawn(dir: &std::path::Path, port: u16) -> std::process::Child {
    support::spawn_serve(
        dir,
        port,
        &[
            ("AGENTIC_WORKER_CONCURRENCY", "2"),
            ("AGENTIC_TEST_JOB_DELAY_MS", "400"),
            ("AGENTIC_LOG_FORMAT", "json"),
        ],
    )
}

async fn metric(http: &reqwest::Client, base: &str, line_prefix: &str) -> Option<i64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn sigkill_mid_job_then_restart_completes_every_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    agentic::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut child = spawn(dir.path(), port);
    support::wait_healthy(&http, &base).await;

    let body = fixture("issues.opened.json");
    let ids: Vec<String> = (0..10).map(|_| delivery_id()).collect();
    for id in &ids {
        let res =
            support::post_delivery(&http, &base, "issues", id, &body, &sign(SECRET, &body)).await;
        assert_eq!(res.status(), 202);
    }
    poll_until("jobs to be running", || async {
        metric(&http, &base, "agentic_jobs{state=\"running\"} ")
            .await
            .filter(|n| *n > 0)
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    let db = format!("sqlite://{}", dir.path().join("agentic.db").display());
    let store = Store::open(&db).await.unwrap();
    assert_eq!(
        store.delivery_count().await.unwrap(),
        10,
        "every accepted delivery survived"
    );
    let before = store.jobs().await.unwrap();
    assert_eq!(before.len(), 10);
    assert!(
        before.iter().any(|j| j.state != "done"),
        "the kill came before the jobs finished"
    );

    let mut child = spawn(dir.path(), port);
    let jobs = poll_until("every job to finish after the restart", || async {
        let jobs = store.jobs().await.unwrap();
        jobs.iter().all(|j| j.state == "done").then_some(jobs)
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(jobs.len(), 10);
    for job in &jobs {
        let completed = store
            .audit_actions(job.id)
            .await
            .unwrap()
            .iter()
            .filter(|a| *a == "job.completed")
            .count();
        assert_eq!(completed, 1, "job {} completed {completed} times", job.id);
    }
    // The jobs the kill interrupted ran again after their lease expired.
    assert!(jobs.iter().any(|j| j.attempts == 2), "{jobs:?}");
    store.close().await;
}
