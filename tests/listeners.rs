//! `AGENTIC_METRICS_LISTEN`: metrics and health checks on their own
//! address, and the public listener answering only what the internet needs
//! (`server::PUBLIC_PATHS`: the webhook and the setup flow).

mod support;

use support::{app_options, delivery_id, TestApp};

async fn status(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener_when_they_have_their_own() {
    let (gh, llm) = support::world().await;
    let app =
        TestApp::start(app_options(&gh, &llm).var("AGENTIC_METRICS_LISTEN", "127.0.0.1:0")).await;
    let running = app.running.as_ref().unwrap();
    let operator = format!(
        "http://{}",
        running.metrics_addr.expect("a second listener")
    );
    assert_ne!(operator, app.url);
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            status(&app.http, &format!("{}{path}", app.url)).await,
            404,
            "public {path}"
        );
        assert_eq!(
            status(&app.http, &format!("{operator}{path}")).await,
            200,
            "operator {path}"
        );
    }
    // The operator's address serves nothing the internet needs.
    assert_eq!(status(&app.http, &format!("{operator}/")).await, 404);
    let res = app
        .http
        .post(format!("{operator}{}", agentic::server::WEBHOOK_PATH))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The public listener still takes deliveries, and answers the setup
    // flow's paths (with the App configured: a notice, and 409).
    let payload =
        support::comment_payload("created", 57, false, 1, "bob-reviewer", "/agentic help");
    let res = app.deliver("issue_comment", &delivery_id(), &payload).await;
    assert_eq!(res.status(), 202);
    app.wait_for_jobs(1).await;
    for path in agentic::server::PUBLIC_PATHS {
        if *path != agentic::server::WEBHOOK_PATH {
            assert_ne!(
                status(&app.http, &format!("{}{path}", app.url)).await,
                404,
                "{path}"
            );
        }
    }
    let text = app
        .http
        .get(format!("{operator}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("agentic_"), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn without_a_second_address_one_listener_serves_everything() {
    let (gh, llm) = support::world().await;
    let app = TestApp::start(app_options(&gh, &llm)).await;
    assert_eq!(app.running.as_ref().unwrap().metrics_addr, None);
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(
            status(&app.http, &format!("{}{path}", app.url)).await,
            200,
            "{path}"
        );
    }
    app.stop().await;
}

#[test]
fn the_metrics_address_must_differ_from_the_public_one() {
    let vars = std::collections::HashMap::from([
        ("AGENTIC_LISTEN".to_string(), "127.0.0.1:3000".to_string()),
        (
            "AGENTIC_METRICS_LISTEN".to_string(),
            "127.0.0.1:3000".to_string(),
        ),
    ]);
    let e = agentic::config::Config::from_vars(&vars)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("AGENTIC_METRICS_LISTEN: is the same address"),
        "{e}"
    );
    let vars = std::collections::HashMap::from([(
        "AGENTIC_METRICS_LISTEN".to_string(),
        "metrics".to_string(),
    )]);
    let e = agentic::config::Config::from_vars(&vars)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "AGENTIC_METRICS_LISTEN: `metrics` is not a socket address like 127.0.0.1:9100"
    );
}
