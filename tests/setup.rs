//! The App-manifest registration flow against a fake GitHub on loopback.

mod support;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use support::{delivery_id, fixture, sign, Options, TestApp};

/// The webhook secret the fake hands out; deliveries signed with it must be
/// accepted once the callback ran.
const ISSUED_SECRET: &str = "issued-by-fake-github-8d2f";
const CODE: &str = "a1b2c3d4e5f6";

#[derive(Clone, Default)]
struct FakeGitHub {
    conversions: Arc<Mutex<Vec<String>>>,
}

/// `POST /app-manifests/{code}/conversions`, as GitHub answers it: 201 with
/// the App's credentials for a known code, 404 otherwise. Unauthenticated,
/// as in GitHub's API.
async fn convert(
    State(fake): State<FakeGitHub>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<serde_json::Value>) {
    fake.conversions.lock().unwrap().push(code.clone());
    assert!(
        headers.get("authorization").is_none(),
        "the conversion call carries no credentials"
    );
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        accept.contains("application/vnd.github+json"),
        "accept: {accept}"
    );
    if code != CODE {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"message": "Not Found"})),
        );
    }
    (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": 1048576,
            "slug": "agentic-devops-test",
            "node_id": "A_kwHOBWBq0c4AEAAA",
            "client_id": "Iv23liTestClient",
            "owner": {"login": "acme-platform", "id": 90210001, "type": "Organization"},
            "name": "agentic-devops-test",
            "description": "test",
            "external_url": "http://127.0.0.1",
            "html_url": "https://github.com/apps/agentic-devops-test",
            "created_at": "2026-11-25T08:00:00Z",
            "updated_at": "2026-11-25T08:00:00Z",
            "permissions": {"metadata": "read"},
            "events": [],
            "client_secret": "fake-client-secret",
            "webhook_secret": ISSUED_SECRET,
            "pem": include_str!("support/test-app-key.pem")
        })),
    )
}

async fn start_fake() -> (String, FakeGitHub) {
    let fake = FakeGitHub::default();
    let app = Router::new()
        .route("/app-manifests/{code}/conversions", post(convert))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

/// GitHub sending the operator back with `code` and `state`.
async fn callback(app: &TestApp, code: &str, state: &str) -> reqwest::Response {
    app.http
        .get(format!(
            "{}/setup/callback?code={code}&state={state}",
            app.url
        ))
        .send()
        .await
        .unwrap()
}

/// A server with no App and no secret, whose GitHub is `github`.
async fn unregistered(github: String) -> TestApp {
    TestApp::start(
        Options::default()
            .without("AGENTIC_WEBHOOK_SECRET")
            .var("AGENTIC_GITHUB_API_URL", github),
    )
    .await
}

/// The setup page as the operator opens it: with the token from the log.
async fn setup_page(app: &TestApp) -> String {
    let token = app
        .running
        .as_ref()
        .unwrap()
        .state
        .setup
        .token()
        .to_string();
    app.get_text(&format!("/?token={token}")).await
}

/// The `state` in the setup page's form action.
fn form_state(html: &str) -> String {
    let start = html
        .find("apps/new?state=")
        .expect("form posts to the manifest flow")
        + 15;
    html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

#[tokio::test]
async fn setup_page_registers_the_app_and_uses_it_from_then_on() {
    let (github, fake) = start_fake().await;
    let app = TestApp::start(
        Options::default()
            .without("AGENTIC_WEBHOOK_SECRET")
            .var("AGENTIC_GITHUB_API_URL", github.clone())
            .var("AGENTIC_PUBLIC_URL", "https://bot.acme.example"),
    )
    .await;
    // Until registered, no delivery can be verified.
    let body = fixture("pull_request.opened.json");
    let res = app
        .deliver_signed(
            "pull_request",
            &delivery_id(),
            &body,
            &sign(ISSUED_SECRET, &body),
        )
        .await;
    assert_eq!(res.status(), 401);

    let page = setup_page(&app).await;
    assert!(page.contains("Register GitHub App"));
    assert!(
        page.contains(&format!("action=\"{github}/settings/apps/new?state=")),
        "{page}"
    );
    assert!(page.contains("https://bot.acme.example/api/github/webhooks"));
    assert!(page.contains("name=\"manifest\""));
    let state = form_state(&page);

    // A callback that this server did not start is refused, and GitHub is
    // not even asked.
    let forged = callback(&app, CODE, "forged").await;
    assert_eq!(forged.status(), 403);
    assert!(fake.conversions.lock().unwrap().is_empty());

    let done = callback(&app, CODE, &state).await;
    assert_eq!(done.status(), 200);
    let text = done.text().await.unwrap();
    assert!(
        text.contains("agentic-devops-test") && text.contains("1048576"),
        "{text}"
    );
    assert!(
        !text.contains(ISSUED_SECRET) && !text.contains("PRIVATE KEY"),
        "no secret on the page"
    );
    assert_eq!(*fake.conversions.lock().unwrap(), [CODE]);

    let path = app.dir.path().join("agentic-app.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "credentials file is private");
    }
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(stored["id"], 1048576);
    assert_eq!(stored["webhook_secret"], ISSUED_SECRET);

    // From now on the new secret is redacted wherever the redactor looks.
    let redactor = &app.running.as_ref().unwrap().state.redactor;
    assert_eq!(
        redactor.redact(&format!("s={ISSUED_SECRET}")),
        "s=[REDACTED]"
    );

    // In use at once, without a restart.
    let res = app
        .deliver_signed(
            "pull_request",
            &delivery_id(),
            &body,
            &sign(ISSUED_SECRET, &body),
        )
        .await;
    assert_eq!(res.status(), 202);
    let page = app.get_text("/").await;
    assert!(page.contains("is configured"), "{page}");
    assert!(
        !page.contains("1048576"),
        "nothing about the App for visitors"
    );
    let again = callback(&app, CODE, &state).await;
    assert_eq!(again.status(), 409);

    // And after a restart, from the file.
    let dir = app.stop().await;
    let app = TestApp::start_in(
        dir,
        Options::default()
            .without("AGENTIC_WEBHOOK_SECRET")
            .var("AGENTIC_GITHUB_API_URL", github),
    )
    .await;
    let res = app
        .deliver_signed(
            "pull_request",
            &delivery_id(),
            &body,
            &sign(ISSUED_SECRET, &body),
        )
        .await;
    assert_eq!(res.status(), 202);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_code_is_reported_and_nothing_is_stored() {
    let (github, fake) = start_fake().await;
    let app = unregistered(github).await;
    let page = setup_page(&app).await;
    let state = form_state(&page);
    let res = callback(&app, "expired0", &state).await;
    assert_eq!(res.status(), 502);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("GitHub refused the registration code (404 Not Found)"));
    assert_eq!(*fake.conversions.lock().unwrap(), ["expired0"]);
    assert!(!app.dir.path().join("agentic-app.json").exists());
    app.stop().await;
}

#[tokio::test]
async fn without_the_setup_token_nothing_is_offered_and_nothing_is_adopted() {
    let (github, fake) = start_fake().await;
    let app = unregistered(github).await;
    // The operator opens the link first; then anyone floods the page.
    let state = form_state(&setup_page(&app).await);
    let dir = app.dir.path().display().to_string();
    for query in ["", "?token=", "?token=0000", "?token=../../etc"] {
        let res = app
            .http
            .get(format!("{}/{query}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{query}");
        let page = res.text().await.unwrap();
        assert!(
            !page.contains("state="),
            "no registration for visitors: {page}"
        );
        assert!(
            !page.contains(&dir) && !page.contains("agentic-app.json"),
            "{page}"
        );
        assert!(page.contains("setup link"), "{page}");
    }
    for _ in 0..2000 {
        let res = app.http.get(format!("{}/", app.url)).send().await.unwrap();
        assert_eq!(res.status(), 403);
    }
    // A state in the right shape whose signature is not ours, and one of
    // ours altered, are refused without asking GitHub.
    let shaped = format!("{:016x}{}", 1u64, "0".repeat(96));
    let mut altered = state.clone();
    altered.replace_range(20..21, if &state[20..21] == "a" { "b" } else { "a" });
    for bad in [shaped.as_str(), altered.as_str(), ""] {
        assert_eq!(callback(&app, CODE, bad).await.status(), 403, "{bad}");
    }
    assert!(fake.conversions.lock().unwrap().is_empty());
    // The operator's registration still goes through after the flood.
    assert_eq!(callback(&app, CODE, &state).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn the_registered_secret_and_the_configured_one_both_verify_after_a_restart() {
    let (github, _fake) = start_fake().await;
    let app = unregistered(github.clone()).await;
    let state = form_state(&setup_page(&app).await);
    assert_eq!(callback(&app, CODE, &state).await.status(), 200);
    let dir = app.stop().await;
    // The operator later also sets a secret in the environment (with a
    // comma, which is part of it).
    let app = TestApp::start_in(
        dir,
        Options::default()
            .var("AGENTIC_WEBHOOK_SECRET", "env,secret-with-comma")
            .var("AGENTIC_GITHUB_API_URL", github),
    )
    .await;
    let body = fixture("pull_request.opened.json");
    for secret in [ISSUED_SECRET, "env,secret-with-comma"] {
        let res = app
            .deliver_signed("pull_request", &delivery_id(), &body, &sign(secret, &body))
            .await;
        assert_eq!(res.status(), 202, "signed with {secret}");
    }
    for part in ["env", "secret-with-comma"] {
        let res = app
            .deliver_signed("pull_request", &delivery_id(), &body, &sign(part, &body))
            .await;
        assert_eq!(
            res.status(),
            401,
            "a piece of the secret is not a secret: {part}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_empty_webhook_secret_from_github_is_refused_and_nothing_is_stored() {
    let fake = FakeGitHub::default();
    let app = Router::new()
        .route(
            "/app-manifests/{code}/conversions",
            post(|| async {
                (
                    StatusCode::CREATED,
                    Json(serde_json::json!({
                        "id": 1048576, "slug": "x", "name": "x", "html_url": "https://github.com/apps/x",
                        "client_id": "Iv1", "client_secret": "s", "webhook_secret": "",
                        "pem": include_str!("support/test-app-key.pem")
                    })),
                )
            }),
        )
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let github = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let app = unregistered(github).await;
    let state = form_state(&setup_page(&app).await);
    let res = callback(&app, CODE, &state).await;
    assert_eq!(res.status(), 502);
    assert!(res.text().await.unwrap().contains("empty webhook secret"));
    assert!(!app.dir.path().join("agentic-app.json").exists());
    let body = fixture("pull_request.opened.json");
    let res = app
        .deliver_signed("pull_request", &delivery_id(), &body, &sign("", &body))
        .await;
    assert_eq!(res.status(), 401, "nothing verifies under an empty secret");
    app.stop().await;
}

#[test]
fn the_setup_link_is_printed_at_start_and_opens_the_page() {
    use std::io::{BufRead, BufReader};
    agentic::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_agentic"))
        .arg("serve")
        .env_clear()
        .env("AGENTIC_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "AGENTIC_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("agentic.db").display()),
        )
        .env(
            "AGENTIC_APP_CREDENTIALS_PATH",
            dir.path().join("agentic-app.json"),
        )
        .env("AGENTIC_GITHUB_API_URL", "http://127.0.0.1:9")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut link = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(at) = line.find("/?token=") {
            let token: String = line[at + 8..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect();
            link = Some(format!("http://127.0.0.1:{port}/?token={token}"));
            break;
        }
    }
    let link = link.expect("serve prints the setup link");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (with, without) = rt.block_on(async {
        let http = reqwest::Client::new();
        support::wait_healthy(&http, &format!("http://127.0.0.1:{port}")).await;
        let with = http.get(&link).send().await.unwrap();
        let with = (with.status(), with.text().await.unwrap());
        let without = http
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap()
            .status();
        (with, without)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(with.0, 200);
    assert!(with.1.contains("Register GitHub App"), "{}", with.1);
    assert_eq!(without, 403);
}
