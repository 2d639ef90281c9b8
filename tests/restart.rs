//! The real binary, killed with SIGKILL while jobs run, then restarted:
//! every delivery is kept and every job completes exactly once.

mod support;

use std::process::{Child, Command, Stdio};

use agentic::store::Store;
use support::{delivery_id, fixture, sign, wait_until, SECRET};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agentic"))
        .arg("serve")
        .env_clear()
        .env("AGENTIC_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "AGENTIC_DATABASE_URL",
            format!("sqlite://{}", dir.join("agentic.db").display()),
        )
        .env("AGENTIC_APP_CREDENTIALS_PATH", dir.join("agentic-app.json"))
        .env("AGENTIC_GITHUB_API_URL", "http://127.0.0.1:9")
        .env("AGENTIC_WEBHOOK_SECRET", SECRET)
        .env("AGENTIC_WORKER_CONCURRENCY", "2")
        .env("AGENTIC_JOB_LEASE_SECS", "2")
        .env("AGENTIC_TEST_JOB_DELAY_MS", "400")
        .env("AGENTIC_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the agentic binary starts")
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
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    agentic::install_crypto_provider();
    let http = reqwest::Client::new();
    let mut child = spawn(dir.path(), port);
    wait_until("the server to answer", || async {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;

    let body = fixture("pull_request.synchronize.json");
    let ids: Vec<String> = (0..10).map(|_| delivery_id()).collect();
    for id in &ids {
        let res = http
            .post(format!("{base}/api/github/webhooks"))
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", id)
            .header("x-hub-signature-256", sign(SECRET, &body))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
    }
    wait_until("jobs to be running", || async {
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
    let jobs = wait_until("every job to finish after the restart", || async {
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
