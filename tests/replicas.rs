//! Several replicas on one PostgreSQL (issue 7): real `agentic serve`
//! processes sharing a database, a fake GitHub and a scripted model; and a
//! database that goes away during intake.

mod support;

use std::collections::HashMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use support::github::{FakeGitHub, Thread, APP_ID, BOT};
use support::llm::FakeLlm;
use support::{
    comment_payload, delivery_id, fixture, poll_until, post_delivery, postgres_db, sign,
    spawn_serve, test_key_path, wait_healthy, Options, TestApp, SECRET,
};

/// A replica of `agentic serve` on `port`, on database `db`, wired to the
/// fakes. Its output goes nowhere; its state is only in the database.
fn replica(
    dir: &std::path::Path,
    port: u16,
    db: &str,
    gh: &FakeGitHub,
    llm: &FakeLlm,
    extra: &[(&str, &str)],
) -> Child {
    let mut vars: Vec<(&str, String)> = vec![
        ("AGENTIC_DATABASE_URL", db.to_string()),
        ("AGENTIC_GITHUB_APP_ID", APP_ID.to_string()),
        ("AGENTIC_GITHUB_PRIVATE_KEY_PATH", test_key_path()),
        ("AGENTIC_GITHUB_API_URL", gh.url.clone()),
        ("OPENAI_BASE_URL", llm.url.clone()),
        ("OPENAI_API_KEY", "sk-test-not-used".into()),
        ("AGENTIC_PROGRESS_INTERVAL_SECS", "3600".into()),
        ("AGENTIC_INSTALLATION_COMMANDS_PER_MINUTE", "100000".into()),
        ("AGENTIC_CONTENT_PER_MINUTE", "100000".into()),
        ("AGENTIC_CONTENT_PER_HOUR", "1000000".into()),
    ];
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push((k, v.to_string()));
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_serve(dir, port, &vars)
}

async fn jobs(pool: &sqlx::PgPool) -> Vec<(i64, String, i64, String)> {
    sqlx::query("SELECT id, state, attempts, kind FROM jobs ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get("id"),
                r.get("state"),
                r.get("attempts"),
                r.get("kind"),
            )
        })
        .collect()
}

async fn wait_all_finished(
    pool: &sqlx::PgPool,
    expected: usize,
) -> Vec<(i64, String, i64, String)> {
    poll_until("every job to finish", || async {
        let jobs = jobs(pool).await;
        (jobs.len() == expected && jobs.iter().all(|j| j.1 == "done" || j.1 == "dead"))
            .then_some(jobs)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_on_one_postgres_run_every_job_once() {
    agentic::install_crypto_provider();
    let db = postgres_db().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let gh = FakeGitHub::start().await;
    let llm = FakeLlm::start().await;
    gh.thread(57, Thread::staging_issue());
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();

    // A replica dies mid-job; another finishes it once its lease runs out.
    let port_a = support::free_port();
    let slow = [
        ("AGENTIC_TEST_JOB_DELAY_MS", "4000"),
        ("AGENTIC_JOB_LEASE_SECS", "2"),
    ];
    let mut a = replica(dir.path(), port_a, &db.url, &gh, &llm, &slow);
    let base_a = format!("http://127.0.0.1:{port_a}");
    wait_healthy(&http, &base_a).await;
    let body = fixture("issues.opened.json");
    let res = post_delivery(
        &http,
        &base_a,
        "issues",
        "task-1",
        &body,
        &sign(SECRET, &body),
    )
    .await;
    assert_eq!(res.status(), 202);
    poll_until("the task to be running on A", || async {
        (jobs(&pool).await.first()?.1 == "running").then_some(())
    })
    .await;
    a.kill().unwrap();
    a.wait().unwrap();

    let ports: Vec<u16> = (0..3).map(|_| support::free_port()).collect();
    let limits = [
        ("AGENTIC_SENDER_COMMANDS_PER_MINUTE", "3"),
        ("AGENTIC_JOB_LEASE_SECS", "2"),
    ];
    let mut replicas: Vec<Child> = ports
        .iter()
        .map(|p| replica(dir.path(), *p, &db.url, &gh, &llm, &limits))
        .collect();
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    for base in &bases {
        wait_healthy(&http, base).await;
    }
    let review = wait_all_finished(&pool, 1).await;
    assert_eq!(
        (review[0].1.as_str(), review[0].2),
        ("done", 2),
        "finished once, by another replica"
    );
    let completions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE action = 'job.completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(completions, 1);
    let mut takeovers = 0.0;
    for base in &bases {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("agentic_lease_takeovers_total "))
        {
            takeovers += line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
        }
    }
    assert_eq!(takeovers, 1.0, "one replica counted the takeover");

    // A few hundred deliveries spread over the replicas; some sent to two
    // replicas at the same moment with the same id.
    let members = 250u64;
    for i in 0..members {
        gh.role(&format!("member-{i}"), "write");
    }
    let mut sends = Vec::new();
    for i in 0..members {
        let payload = comment_payload(
            "created",
            57,
            false,
            960_000 + i,
            &format!("member-{i}"),
            "/agentic help",
        );
        let id = delivery_id();
        let targets: Vec<&String> = if i % 5 == 0 {
            vec![&bases[(i % 3) as usize], &bases[((i + 1) % 3) as usize]]
        } else {
            vec![&bases[(i % 3) as usize]]
        };
        for base in targets {
            let (http, payload, id, base) =
                (http.clone(), payload.clone(), id.clone(), base.clone());
            sends.push(tokio::spawn(async move {
                let sig = sign(SECRET, &payload);
                post_delivery(&http, &base, "issue_comment", &id, &payload, &sig)
                    .await
                    .status()
            }));
        }
    }
    for s in futures::future::join_all(sends).await {
        assert_eq!(s.unwrap(), 202);
    }
    let finished = wait_all_finished(&pool, 1 + members as usize).await;
    assert!(finished.iter().all(|j| j.1 == "done"), "{finished:?}");
    let comments = gh.comments(57);
    let ours: Vec<_> = comments.iter().filter(|c| c.user == BOT).collect();
    assert_eq!(
        ours.len(),
        members as usize,
        "exactly one sticky comment per command"
    );
    let mut markers: HashMap<String, usize> = HashMap::new();
    for c in &ours {
        let marker = c.body.rsplit("<!-- ").next().unwrap().to_string();
        *markers.entry(marker).or_default() += 1;
    }
    assert!(markers.values().all(|n| *n == 1), "no job posted twice");

    // One sender's commands spread over the three replicas meet one limit
    // (three a minute), not three times it.
    gh.role("carol-writer", "write");
    for i in 0..9u64 {
        let payload = comment_payload(
            "created",
            57,
            false,
            970_000 + i,
            "carol-writer",
            "/agentic help",
        );
        let base = &bases[(i % 3) as usize];
        let res = post_delivery(
            &http,
            base,
            "issue_comment",
            &delivery_id(),
            &payload,
            &sign(SECRET, &payload),
        )
        .await;
        assert_eq!(res.status(), 202);
    }
    wait_all_finished(&pool, 1 + members as usize + 9).await;
    let after = gh.comments(57);
    let helps = after[comments.len()..]
        .iter()
        .filter(|c| c.body.starts_with("**agentic commands**"))
        .count();
    let slow_down = after[comments.len()..]
        .iter()
        .filter(|c| c.body.contains("faster than I take them"))
        .count();
    assert_eq!(
        (helps, slow_down),
        (3, 1),
        "the documented limit, once, across replicas"
    );

    for r in replicas.iter_mut() {
        r.kill().unwrap();
        r.wait().unwrap();
    }
    gh.take_writes();
}

/// A TCP proxy to PostgreSQL that the test can cut: while down, it closes
/// every connection and refuses new ones.
struct Cuttable {
    addr: std::net::SocketAddr,
    down: Arc<AtomicBool>,
}

impl Cuttable {
    async fn start(target: std::net::SocketAddr) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let flag = down.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if flag.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let flag = flag.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut = async {
                        while !flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! { _ = copy => {}, _ = cut => {} }
                });
            }
        });
        Cuttable { addr, down }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_database_is_away_intake_says_503_and_nothing_accepted_is_lost() {
    let db = postgres_db().await;
    let mut url = reqwest::Url::parse(&db.url).unwrap();
    let target: std::net::SocketAddr =
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
            .parse()
            .unwrap();
    let proxy = Cuttable::start(target).await;
    url.set_port(Some(proxy.addr.port())).unwrap();
    let app = TestApp::start(
        Options::default()
            .var("AGENTIC_DATABASE_URL", url.to_string())
            // A result that cannot be recorded during the outage leaves its
            // job to the lease; keep that short here.
            .var("AGENTIC_JOB_LEASE_SECS", "2"),
    )
    .await;
    let body = fixture("issues.opened.json");
    let mut accepted = Vec::new();
    for _ in 0..5 {
        let id = delivery_id();
        assert_eq!(app.deliver("issues", &id, &body).await.status(), 202);
        accepted.push(id);
    }
    proxy.down.store(true, Ordering::SeqCst);
    let ready = poll_until("readiness to fail", || async {
        let res = app
            .http
            .get(format!("{}/readyz", app.url))
            .send()
            .await
            .ok()?;
        (res.status() == 503).then_some(res.status())
    })
    .await;
    assert_eq!(ready, 503);
    // The cut reaches an open connection a moment late, so a delivery may
    // still be stored (and answered 202) just after it; what matters is
    // that 202 means stored and 503 means not. Three 503s in a row show
    // the outage is seen.
    let mut refused: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while refused.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outage was never seen"
        );
        let id = delivery_id();
        match app.deliver("issues", &id, &body).await.status().as_u16() {
            202 => {
                accepted.push(id);
                refused.clear();
            }
            503 => refused.push(id),
            other => panic!("answered {other}"),
        }
    }
    proxy.down.store(false, Ordering::SeqCst);
    wait_healthy(&app.http, &app.url).await;
    for _ in 0..5 {
        let id = delivery_id();
        assert_eq!(app.deliver("issues", &id, &body).await.status(), 202);
        accepted.push(id);
    }
    let jobs = app.wait_for_jobs(accepted.len()).await;
    assert!(jobs.iter().all(|j| j.state == "done"), "{jobs:?}");
    for id in &accepted {
        assert!(
            app.store().delivery(id).await.unwrap().is_some(),
            "202 means stored: {id}"
        );
    }
    for id in &refused {
        assert!(
            app.store().delivery(id).await.unwrap().is_none(),
            "503 means not stored: {id}"
        );
    }
    app.stop().await;
}
