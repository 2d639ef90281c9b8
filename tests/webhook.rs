//! Webhook intake through the real router: every rule of the endpoint.

mod support;

use support::{delivery_id, fixture, sign, Options, TestApp, SECRET};

#[tokio::test]
async fn valid_delivery_is_stored_queued_and_run() {
    let app = TestApp::start(Options::default()).await;
    let id = delivery_id();
    // An infrastructure task: its workflow needs nothing from GitHub yet,
    // so the job runs to the end on a server without an App.
    let res = app
        .deliver("issues", &id, &fixture("issues.opened.json"))
        .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.text().await.unwrap(), "accepted\n");

    let stored = app
        .store()
        .delivery(&id)
        .await
        .unwrap()
        .expect("delivery stored");
    assert_eq!(stored.event, "issues");
    assert_eq!(stored.action.as_deref(), Some("opened"));
    assert_eq!(stored.installation_id, Some(48151623));
    assert_eq!(stored.repo.as_deref(), Some("acme-platform/infra-live"));
    assert_eq!(stored.outcome, "accepted");

    let jobs = app.wait_for_jobs(1).await;
    assert_eq!(jobs[0].kind, "infra_task");
    assert_eq!(jobs[0].subject, "acme-platform/infra-live#57");
    assert_eq!(jobs[0].state, "done");
    assert_eq!(jobs[0].attempts, 1);
    assert_eq!(
        app.store().audit_actions(jobs[0].id).await.unwrap(),
        ["job.completed"]
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_signature_is_401_without_detail_and_stores_nothing() {
    let app = TestApp::start(Options::default()).await;
    let body = fixture("pull_request.opened.json");
    let cases = [
        sign("not-the-secret", &body),
        sign(SECRET, b"a different body"),
        "sha256=".to_string(),
        "sha256=zz".to_string(),
        // The legacy SHA-1 header value is not accepted in place of SHA-256.
        format!("sha1={}", &sign(SECRET, &body)[7..47]),
    ];
    for signature in &cases {
        let res = app
            .deliver_signed("pull_request", &delivery_id(), &body, signature)
            .await;
        assert_eq!(res.status(), 401, "{signature}");
        assert_eq!(res.text().await.unwrap(), "", "a 401 says nothing");
    }
    let res = app
        .http
        .post(format!("{}/api/github/webhooks", app.url))
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", delivery_id())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(app.store().delivery_count().await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn both_secrets_verify_during_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets");
    std::fs::write(&file, "old-secret-1\nnew-secret-2\n").unwrap();
    let app = TestApp::start(
        Options::default()
            .without("AGENTIC_WEBHOOK_SECRET")
            .var("AGENTIC_WEBHOOK_SECRETS_FILE", file.display().to_string()),
    )
    .await;
    let body = fixture("issues.opened.json");
    for secret in ["old-secret-1", "new-secret-2"] {
        let res = app
            .deliver_signed("issues", &delivery_id(), &body, &sign(secret, &body))
            .await;
        assert_eq!(res.status(), 202, "signed with {secret}");
    }
    let res = app
        .deliver_signed("issues", &delivery_id(), &body, &sign("retired-0", &body))
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(app.store().delivery_count().await.unwrap(), 2);
    app.stop().await;
}

#[tokio::test]
async fn missing_event_or_delivery_header_is_400() {
    let app = TestApp::start(Options::default()).await;
    let body = fixture("issues.opened.json");
    let sig = sign(SECRET, &body);
    let url = format!("{}/api/github/webhooks", app.url);
    let without_event = app
        .http
        .post(&url)
        .header("x-github-delivery", delivery_id())
        .header("x-hub-signature-256", &sig)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(without_event.status(), 400);
    assert_eq!(
        without_event.text().await.unwrap(),
        "missing X-GitHub-Event header\n"
    );
    let without_delivery = app
        .http
        .post(&url)
        .header("x-github-event", "issues")
        .header("x-hub-signature-256", &sig)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(without_delivery.status(), 400);
    assert_eq!(
        without_delivery.text().await.unwrap(),
        "missing X-GitHub-Delivery header\n"
    );
    let res = app.deliver("issues", &"x".repeat(200), &body).await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.store().delivery_count().await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::start(Options::default()).await;
    let body = vec![b' '; 25 * 1024 * 1024 + 1];
    let res = app.deliver("issues", &delivery_id(), &body).await;
    assert_eq!(res.status(), 413);
    // Just under the cap is read, verified and parsed (here: not JSON).
    let mut body = b"{\"action\":\"opened\"}".to_vec();
    body.resize(25 * 1024 * 1024, b' ');
    let res = app.deliver("issues", &delivery_id(), &body).await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.store().delivery_count().await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn malformed_payload_of_a_handled_event_is_400_with_a_short_reason() {
    let app = TestApp::start(Options::default()).await;
    let res = app
        .deliver("pull_request", &delivery_id(), b"{\"action\": \"opened\",")
        .await;
    assert_eq!(res.status(), 400);
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with("payload is not a valid `pull_request` event: "),
        "{text}"
    );

    // Valid JSON, wrong shape: an opened pull request without its number.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("pull_request.opened.json")).unwrap();
    v.as_object_mut().unwrap().remove("number");
    let body = serde_json::to_vec(&v).unwrap();
    let res = app.deliver("pull_request", &delivery_id(), &body).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("missing field `number`"));
    assert_eq!(app.store().delivery_count().await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn unknown_event_is_202_and_recorded_as_ignored() {
    let app = TestApp::start(Options::default()).await;
    let id = delivery_id();
    let res = app.deliver("push", &id, &fixture("push.json")).await;
    assert_eq!(res.status(), 202);
    assert_eq!(
        res.text().await.unwrap(),
        "ignored: event `push` is not handled\n"
    );
    let d = app.store().delivery(&id).await.unwrap().unwrap();
    assert_eq!(d.outcome, "ignored");
    assert_eq!(d.repo.as_deref(), Some("acme-platform/infra-live"));
    assert!(app.store().jobs().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn ping_is_200() {
    let app = TestApp::start(Options::default()).await;
    let res = app
        .deliver("ping", &delivery_id(), &fixture("ping.json"))
        .await;
    assert_eq!(res.status(), 200);
    assert!(app.store().jobs().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn redelivery_with_the_same_id_creates_no_second_job() {
    let app = TestApp::start(Options::default()).await;
    let id = delivery_id();
    let body = fixture("issue_comment.created.pull_request.json");
    let first = app.deliver("issue_comment", &id, &body).await;
    assert_eq!(first.status(), 202);
    app.wait_for_jobs(1).await;
    let again = app.deliver("issue_comment", &id, &body).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.text().await.unwrap(), "duplicate delivery\n");
    let jobs = app.store().jobs().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, "command");
    assert_eq!(jobs[0].attempts, 1);
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("agentic_webhook_deliveries_total{outcome=\"duplicate\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

/// Each fixture, what it must become: (file, event, job kind or ignore reason).
const FIXTURES: &[(&str, &str, Result<&str, &str>)] = &[
    (
        "issue_comment.created.pull_request.json",
        "issue_comment",
        Ok("command"),
    ),
    (
        "issue_comment.created.issue.json",
        "issue_comment",
        Ok("command"),
    ),
    ("issue_comment.edited.json", "issue_comment", Ok("command")),
    // Someone else's comment edited to say `/agentic approve`: commands
    // belong to whoever typed them, so nothing runs.
    (
        "issue_comment.edited.by_another.json",
        "issue_comment",
        Err("comment edited by someone other than its author"),
    ),
    (
        "issue_comment.created.by_bot.json",
        "issue_comment",
        Err("comment by a bot"),
    ),
    (
        "issue_comment.created.no_installation.json",
        "issue_comment",
        Err("no installation in the payload"),
    ),
    (
        "issue_comment.deleted.json",
        "issue_comment",
        Err("action `deleted` of `issue_comment` is not handled"),
    ),
    ("pull_request.opened.json", "pull_request", Ok("review")),
    ("pull_request.reopened.json", "pull_request", Ok("review")),
    (
        "pull_request.synchronize.json",
        "pull_request",
        Ok("review"),
    ),
    (
        "pull_request.ready_for_review.json",
        "pull_request",
        Ok("review"),
    ),
    // Closing withdraws the thread's plans and stops its work: a review job.
    ("pull_request.closed.json", "pull_request", Ok("review")),
    (
        "pull_request.opened.no_installation.json",
        "pull_request",
        Err("no installation in the payload"),
    ),
    ("issues.opened.json", "issues", Ok("infra_task")),
    ("issues.labeled.json", "issues", Ok("infra_task")),
    (
        "check_run.requested_action.json",
        "check_run",
        Ok("check_run_action"),
    ),
    (
        "check_run.rerequested.json",
        "check_run",
        Ok("check_run_action"),
    ),
    (
        "check_suite.rerequested.json",
        "check_suite",
        Ok("check_run_action"),
    ),
    // Our plan's check run, completed `action_required`: nothing failed.
    (
        "check_run.completed.json",
        "check_run",
        Err("a completed check run that did not fail"),
    ),
    // A GitHub Actions job that failed on a pull request's head.
    (
        "check_run.completed.failure.json",
        "check_run",
        Ok("ci_explain"),
    ),
    (
        "installation.created.json",
        "installation",
        Ok("installation"),
    ),
    (
        "installation.deleted.json",
        "installation",
        Ok("installation"),
    ),
    ("push.json", "push", Err("event `push` is not handled")),
    (
        "pull_request_review_comment.created.json",
        "pull_request_review_comment",
        Ok("command"),
    ),
];

#[tokio::test]
async fn every_fixture_is_answered_2xx_and_becomes_the_right_job() {
    let app = TestApp::start(Options::default()).await;
    let mut expected_jobs = 0;
    // Deliveries whose job must talk to GitHub (this server has no App):
    // commands, reviews, failed checks, and an issue labelled for a plan.
    let mut needs_github = std::collections::HashSet::new();
    for (file, event, expect) in FIXTURES {
        let id = delivery_id();
        // Closing with no plan to withdraw needs no GitHub.
        if (matches!(expect, Ok("command" | "review" | "ci_explain"))
            || *file == "issues.labeled.json")
            && *file != "pull_request.closed.json"
        {
            needs_github.insert(id.clone());
        }
        let res = app.deliver(event, &id, &fixture(file)).await;
        assert_eq!(res.status(), 202, "{file}");
        let jobs = app.store().jobs_for_delivery(&id).await.unwrap();
        let d = app.store().delivery(&id).await.unwrap().unwrap();
        match expect {
            Ok(kind) => {
                expected_jobs += 1;
                assert_eq!(jobs.len(), 1, "{file}");
                assert_eq!(jobs[0].kind, *kind, "{file}");
                assert_eq!(d.outcome, "accepted", "{file}");
            }
            Err(reason) => {
                assert!(jobs.is_empty(), "{file}");
                assert_eq!(d.outcome, "ignored", "{file}");
                assert_eq!(d.reason.as_deref(), Some(*reason), "{file}");
            }
        }
    }
    let jobs = app.wait_for_jobs(expected_jobs).await;
    for job in &jobs {
        if needs_github.contains(&job.delivery_id) {
            assert_eq!(
                (job.state.as_str(), job.last_error.as_deref()),
                ("dead", Some("no GitHub App is configured"))
            );
        } else {
            assert_eq!(job.state, "done", "{job:?}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn form_encoded_deliveries_are_verified_over_the_raw_body() {
    let app = TestApp::start(Options::default()).await;
    let json = fixture("issues.labeled.json");
    let body =
        serde_urlencoded::to_string([("payload", String::from_utf8(json).unwrap())]).unwrap();
    let res = app
        .http
        .post(format!("{}/api/github/webhooks", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "issues")
        .header("x-github-delivery", delivery_id())
        .header("x-hub-signature-256", sign(SECRET, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let jobs = app.wait_for_jobs(1).await;
    assert_eq!(jobs[0].kind, "infra_task");
    assert_eq!(jobs[0].subject, "acme-platform/infra-live#57");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_deliveries_are_all_stored_once() {
    // 600 at once, more than the cap on deliveries in flight: the burst
    // waits its turn rather than being refused.
    let app = TestApp::start(Options::default()).await;
    let body = fixture("issues.opened.json");
    let ids: Vec<String> = (0..300).map(|_| delivery_id()).collect();
    // Every id twice, all at once: group commit must still dedupe exactly.
    let requests = ids
        .iter()
        .chain(ids.iter())
        .map(|id| app.deliver("issues", id, &body));
    let responses = futures::future::join_all(requests).await;
    assert!(responses.iter().all(|r| r.status() == 202));
    assert_eq!(app.store().delivery_count().await.unwrap(), 300);
    let jobs = app.wait_for_jobs(300).await;
    assert!(jobs.iter().all(|j| j.state == "done" && j.attempts == 1));
    app.stop().await;
}

#[tokio::test]
async fn health_and_metrics() {
    let app = TestApp::start(Options::default()).await;
    let health = app
        .http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    app.deliver("issues", &delivery_id(), &fixture("issues.opened.json"))
        .await;
    app.deliver("push", &delivery_id(), &fixture("push.json"))
        .await;
    app.deliver_signed("push", &delivery_id(), b"{}", "sha256=00")
        .await;
    app.wait_for_jobs(1).await;
    let res = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    for line in [
        "agentic_webhook_deliveries_total{outcome=\"accepted\"} 1",
        "agentic_webhook_deliveries_total{outcome=\"ignored\"} 1",
        "agentic_webhook_deliveries_total{outcome=\"rejected\"} 1",
        "agentic_webhook_deliveries_total{outcome=\"duplicate\"} 0",
        "agentic_jobs{state=\"done\"} 1",
        "agentic_jobs{state=\"queued\"} 0",
        "agentic_job_attempts_total{kind=\"infra_task\",result=\"done\"} 1",
        "agentic_webhook_intake_duration_seconds_count 2",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    app.stop().await;
}

/// Send a request head and the first `sent` bytes of a body that claims
/// `declared` bytes, then read the status line of the answer (without
/// sending the rest). Fails after the test's patience.
async fn partial_post(
    url: &str,
    headers: &[(&str, String)],
    declared: usize,
    sent: usize,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "POST /api/github/webhooks HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b' '; sent]).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(support::PATIENCE, read)
        .await
        .expect("the server answered without waiting for the whole body");
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn github_headers(signature: Option<String>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("x-github-event", "issues".to_string()),
        ("x-github-delivery", delivery_id()),
    ];
    if let Some(sig) = signature {
        h.push(("x-hub-signature-256", sig));
    }
    h
}

#[tokio::test]
async fn an_unsigned_or_unverifiable_delivery_is_refused_before_its_body_is_read() {
    let twenty_mb = 20 * 1024 * 1024;
    let app = TestApp::start(Options::default()).await;
    let (status, _) = partial_post(&app.url, &github_headers(None), twenty_mb, 1024).await;
    assert_eq!(status, 401, "no signature header: refused at the headers");
    let oversized = 26 * 1024 * 1024;
    let (status, _) = partial_post(
        &app.url,
        &github_headers(Some(sign(SECRET, b"x"))),
        oversized,
        1024,
    )
    .await;
    assert_eq!(
        status, 413,
        "a declared length over 25 MiB: refused at once"
    );
    app.stop().await;

    let app = TestApp::start(Options::default().without("AGENTIC_WEBHOOK_SECRET")).await;
    let (status, _) = partial_post(
        &app.url,
        &github_headers(Some(sign(SECRET, b"x"))),
        twenty_mb,
        1024,
    )
    .await;
    assert_eq!(status, 401, "no secret configured: refused at the headers");
    assert_eq!(app.store().delivery_count().await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let app =
        TestApp::start(Options::default().var("AGENTIC_WEBHOOK_BODY_TIMEOUT_SECS", "1")).await;
    let (status, _) = partial_post(
        &app.url,
        &github_headers(Some(sign(SECRET, b"{}"))),
        100_000,
        10,
    )
    .await;
    assert_eq!(status, 408);
    assert_eq!(app.store().delivery_count().await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn past_the_cap_on_deliveries_in_flight_the_answer_is_503_with_retry_after() {
    let app = TestApp::start(
        Options::default()
            .var("AGENTIC_MAX_INFLIGHT_DELIVERIES", "1")
            .var("AGENTIC_WEBHOOK_BODY_TIMEOUT_SECS", "20"),
    )
    .await;
    // A slow upload holds the only slot…
    let url = app.url.clone();
    let slow = tokio::spawn(async move {
        partial_post(
            &url,
            &github_headers(Some(sign(SECRET, b"{}"))),
            100_000,
            10,
        )
        .await
    });
    support::poll_until("the slow upload to hold the slot", || async {
        (app.running
            .as_ref()
            .unwrap()
            .state
            .inflight
            .available_permits()
            == 0)
            .then_some(())
    })
    .await;
    // …so a full delivery waits its short while, then gets 503.
    let res = app
        .deliver("issues", &delivery_id(), &fixture("issues.opened.json"))
        .await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    slow.abort();
    // Once the slot is free again, deliveries are taken as before.
    let res = support::poll_until("the slot to be free again", || async {
        let res = app
            .deliver("issues", &delivery_id(), &fixture("issues.opened.json"))
            .await;
        (res.status() == 202).then_some(res)
    })
    .await;
    assert_eq!(res.status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn readiness_fails_and_intake_answers_503_when_the_writer_has_stopped() {
    let app = TestApp::start(Options::default()).await;
    for path in ["/healthz", "/readyz"] {
        let res = app
            .http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    app.store().stop_writer_for_tests();
    for path in ["/healthz", "/readyz"] {
        let res = support::poll_until("readiness to fail", || async {
            let res = app
                .http
                .get(format!("{}{path}", app.url))
                .send()
                .await
                .unwrap();
            (res.status() == 503).then_some(res)
        })
        .await;
        assert_eq!(res.status(), 503);
    }
    let res = app
        .deliver("issues", &delivery_id(), &fixture("issues.opened.json"))
        .await;
    assert_eq!(
        res.status(),
        503,
        "never 202 for a delivery that was not stored"
    );
    app.stop().await;
}
