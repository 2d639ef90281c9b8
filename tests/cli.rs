//! The command line, run as the real binary.

mod support;

use std::process::{Command, Output};

fn agentic(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentic"));
    cmd.args(args)
        .env_clear()
        .current_dir(dir)
        .env(
            "AGENTIC_DATABASE_URL",
            format!("sqlite://{}", dir.join("agentic.db").display()),
        )
        .env("AGENTIC_GITHUB_API_URL", "http://127.0.0.1:9");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn fixture_path(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version() {
    let dir = tempfile::tempdir().unwrap();
    let out = agentic(dir.path(), &["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("agentic {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_setting_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, expected) in [
        ("AGENTIC_LISTEN", "not-an-address", "error: AGENTIC_LISTEN: `not-an-address` is not a socket address like 127.0.0.1:3000\n"),
        ("AGENTIC_GITHUB_APP_ID", "123", "error: AGENTIC_GITHUB_PRIVATE_KEY: AGENTIC_GITHUB_APP_ID is set but no private key is (set this or AGENTIC_GITHUB_PRIVATE_KEY_PATH)\n"),
        ("AGENTIC_GITHUB_PRIVATE_KEY_PATH", "/nonexistent/key.pem", "error: AGENTIC_GITHUB_PRIVATE_KEY_PATH: cannot read `/nonexistent/key.pem`: No such file or directory (os error 2)\n"),
        ("AGENTIC_LOG_FORMAT", "xml", "error: AGENTIC_LOG_FORMAT: `xml` is not `text` or `json`\n"),
    ] {
        let out = agentic(dir.path(), &["serve"], &[(key, value)]);
        assert_eq!(out.status.code(), Some(1), "{key}");
        assert_eq!(text(&out.stderr), expected);
    }
    let out = agentic(
        dir.path(),
        &["serve"],
        &[("AGENTIC_DATABASE_URL", "postgres://db/agentic")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).starts_with("error: AGENTIC_DATABASE_URL:"));
}

#[test]
fn manifest_prints_json_for_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let out = agentic(
        dir.path(),
        &["manifest", "--public-url", "https://bot.acme.example"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["hook_attributes"]["url"],
        "https://bot.acme.example/api/github/webhooks"
    );
    assert_eq!(m["default_permissions"]["checks"], "write");
    let out = agentic(
        dir.path(),
        &["manifest"],
        &[("AGENTIC_PUBLIC_URL", "https://from.env")],
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["redirect_url"], "https://from.env/setup/callback");
}

#[test]
fn replay_dry_run_shows_the_job_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = agentic(
        dir.path(),
        &[
            "replay",
            &fixture_path("issue_comment.created.pull_request.json"),
            "--event",
            "issue_comment",
            "--delivery-id",
            "d-1",
            "--dry-run",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "delivery d-1 (issue_comment created)\n  job command for acme-platform/infra-live#42\ndry run: nothing stored\n"
    );
    assert!(!dir.path().join("agentic.db").exists());
}

#[test]
fn replay_runs_the_job_through_the_same_pipeline_and_dedupes() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "replay",
        &fixture_path("pull_request.opened.json"),
        "--event",
        "pull_request",
        "--delivery-id",
        "d-2",
    ];
    let out = agentic(dir.path(), &args, &[("RUST_LOG", "off")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        // The review runs for real: without an App there is no one to
        // review as, and the replay says so.
        "delivery d-2 (pull_request opened)\n  job review for acme-platform/infra-live#42\n  job 1 review: dead after 1 attempt(s): no GitHub App is configured\n"
    );
    let again = agentic(dir.path(), &args, &[("RUST_LOG", "off")]);
    assert!(text(&again.stdout)
        .contains("already stored: delivery d-2 was received before; nothing queued"));
    assert!(text(&again.stdout).contains("job 1 review: dead after 1 attempt(s)"));
}

#[test]
fn replay_of_a_broken_payload_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"action\":\"opened\"}").unwrap();
    let out = agentic(
        dir.path(),
        &["replay", bad.to_str().unwrap(), "--event", "pull_request"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: `")
            && err.contains("payload is not a valid `pull_request` event: missing field"),
        "{err}"
    );
    let out = agentic(
        dir.path(),
        &["replay", "/nonexistent.json", "--event", "ping"],
        &[],
    );
    assert_eq!(
        text(&out.stderr),
        "error: cannot read `/nonexistent.json`: No such file or directory (os error 2)\n"
    );
}

use support::github as fake_github;
use support::llm as fake_llm;

#[tokio::test]
async fn ask_from_the_command_line_prints_and_posts_the_answer() {
    let gh = fake_github::FakeGitHub::start().await;
    let token = "ghp_clitoken0123456789abcdefghijklmnopqr";
    gh.accept_token(token);
    gh.thread(
        57,
        fake_github::Thread {
            title: "Stop the builders".into(),
            body: "b".into(),
            author: "alice-ops".into(),
            author_type: String::new(),
            pull: None,
            comments: vec![],
        },
    );
    let llm = fake_llm::FakeLlm::start().await;
    llm.script([
        fake_llm::Step::Tool("get_issue", serde_json::json!({})),
        fake_llm::Step::Answer("Stop them on Fridays.".into()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (gh_url, llm_url) = (gh.url.clone(), llm.url.clone());
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        agentic(
            &path,
            &[
                "ask",
                "--repo",
                "acme-platform/infra-live",
                "--number",
                "57",
                "--post",
                "when should they stop?",
            ],
            &[
                ("GITHUB_TOKEN", token),
                ("AGENTIC_GITHUB_API_URL", &gh_url),
                ("OPENAI_BASE_URL", &llm_url),
                ("RUST_LOG", "off"),
            ],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Stop them on Fridays.\n");
    assert!(
        text(&out.stderr).contains("… step 1: `get_issue`"),
        "progress is shown: {}",
        text(&out.stderr)
    );
    let writes = gh.take_writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].path,
        "/repos/acme-platform/infra-live/issues/57/comments"
    );
    assert_eq!(writes[0].body["body"], "Stop them on Fridays.");
    gh.assert_all_seen();
    llm.assert_clean();
}

#[tokio::test]
async fn review_from_the_command_line_prints_the_review_and_posts_it_with_post() {
    let gh = fake_github::FakeGitHub::start().await;
    let token = "ghp_clitoken0123456789abcdefghijklmnopqr";
    gh.accept_token(token);
    let head = "44aa000000000000000000000000000000000001";
    gh.thread(
        44,
        fake_github::Thread {
            title: "retry".into(),
            body: "b".into(),
            author: "alice-ops".into(),
            pull: Some(fake_github::Pull {
                head_sha: head.into(),
                head_ref: "x".into(),
                base_ref: "main".into(),
                files: vec![(
                    "src/retry.rs".into(),
                    "@@ -1,2 +1,2 @@\n fn a() {}\n-fn b() {}\n+fn b() { panic!() }".into(),
                )],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let llm = fake_llm::FakeLlm::start().await;
    let submit = || {
        fake_llm::Step::Tool(
            "submit_review",
            serde_json::json!({ "summary": "One risk.", "comments": [
                { "path": "src/retry.rs", "line": 2, "anchor": "fn b() { panic!() }", "severity": "major", "body": "`b` panics." },
                { "path": "src/retry.rs", "line": 9, "anchor": "fn c() {}", "severity": "minor", "body": "Off the diff." }
            ] }),
        )
    };
    llm.script([submit(), submit()]);
    let dir = tempfile::tempdir().unwrap();
    let (gh_url, llm_url) = (gh.url.clone(), llm.url.clone());
    let path = dir.path().to_path_buf();
    let run = move |post: bool| {
        let (gh_url, llm_url, path) = (gh_url.clone(), llm_url.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "review",
                "--repo",
                "acme-platform/infra-live",
                "--number",
                "44",
            ];
            if post {
                args.push("--post");
            }
            agentic(
                &path,
                &args,
                &[
                    ("GITHUB_TOKEN", token),
                    ("AGENTIC_GITHUB_API_URL", &gh_url),
                    ("OPENAI_BASE_URL", &llm_url),
                    ("RUST_LOG", "off"),
                ],
            )
        })
    };
    let out = run(false).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("One risk."), "{printed}");
    assert!(
        printed.contains("**Minor** `src/retry.rs` line 9 (line not in the diff): Off the diff."),
        "{printed}"
    );
    assert!(
        printed.contains("--- src/retry.rs:2\n**Major:** `b` panics."),
        "{printed}"
    );
    assert!(gh.take_writes().is_empty(), "nothing posted without --post");

    let out = run(true).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let writes = gh.take_writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].path,
        "/repos/acme-platform/infra-live/pulls/44/reviews"
    );
    assert_eq!(writes[0].body["event"], "COMMENT");
    assert_eq!(writes[0].body["comments"].as_array().unwrap().len(), 1);
    gh.assert_all_seen();
    llm.assert_clean();
}

#[test]
fn ask_without_a_token_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = agentic(
        dir.path(),
        &["ask", "--repo", "o/r", "--number", "1", "q"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "error: GITHUB_TOKEN: not set (a token that can read o/r)\n"
    );
}

/// `migrate`, `jobs`, `jobs retry` and `prune`, on both backends.
#[tokio::test(flavor = "multi_thread")]
async fn operators_migrate_list_retry_and_prune_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = support::postgres_db().await;
    let sqlite = format!("sqlite://{}", dir.path().join("ops.db").display());
    for url in [sqlite.as_str(), postgres.url.as_str()] {
        let run = |args: &[&str]| {
            agentic(
                dir.path(),
                args,
                &[("AGENTIC_DATABASE_URL", url), ("RUST_LOG", "off")],
            )
        };
        let out = run(&["migrate"]);
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        let migrations =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
                .unwrap()
                .count();
        assert_eq!(
            text(&out.stdout),
            format!("applied {migrations} migration(s); the schema is up to date\n"),
            "{url}"
        );
        let out = run(&["migrate"]);
        assert_eq!(
            text(&out.stdout),
            "applied 0 migration(s); the schema is up to date\n",
            "{url}"
        );
        // With no App configured, a command job is dead at once.
        let out = run(&[
            "replay",
            &fixture_path("issue_comment.created.issue.json"),
            "--event",
            "issue_comment",
            "--delivery-id",
            "d-ops",
        ]);
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        let out = run(&["jobs", "--state", "dead", "--json"]);
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        let dead: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(dead.as_array().unwrap().len(), 1, "{url}: {dead}");
        assert_eq!(
            dead[0]["last_error"], "no GitHub App is configured",
            "{url}"
        );
        let id = dead[0]["id"].as_i64().unwrap().to_string();
        let table = text(&run(&["jobs"]).stdout);
        assert!(
            table.lines().nth(1).unwrap().contains("dead"),
            "{url}: {table}"
        );
        let out = run(&["jobs", "retry", &id]);
        assert_eq!(
            text(&out.stdout),
            format!("job {id} is queued again\n"),
            "{url}"
        );
        let queued: serde_json::Value =
            serde_json::from_slice(&run(&["jobs", "--state", "queued", "--json"]).stdout).unwrap();
        assert_eq!(queued[0]["attempts"], 0, "{url}");
        let out = run(&["jobs", "retry", &id]);
        assert!(!out.status.success(), "{url}: only dead jobs");
        assert!(text(&out.stderr).contains("is not dead"), "{url}");
        let out = run(&["prune", "--dry-run"]);
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("would delete: 0 jobs, 0 outputs"),
            "{url}: {}",
            text(&out.stdout)
        );
    }
}

/// `agentic audit`: by repository and time, as lines or JSON, on both
/// backends.
#[tokio::test(flavor = "multi_thread")]
async fn audit_prints_the_log_by_repository_and_time_on_both_backends() {
    use agentic::store::{AuditEntry, NewDelivery, Store};
    for db in support::test_dbs().await {
        let store = Store::open(&db.url).await.unwrap();
        for (id, repo) in [("d-acme", "acme/infra"), ("d-globex", "globex/payments")] {
            store
                .record_delivery(NewDelivery {
                    id: id.into(),
                    event: "issues".into(),
                    action: Some("opened".into()),
                    installation_id: Some(1),
                    repo: Some(repo.into()),
                    outcome: "ignored",
                    reason: Some("test".into()),
                    jobs: vec![],
                })
                .await
                .unwrap();
            store
                .audit(AuditEntry {
                    job_id: Some(7),
                    delivery_id: Some(id.into()),
                    actor: Some("bob".into()),
                    action: agentic::domain::AuditAction::ToolCall,
                    detail: Some(serde_json::json!({ "tool": "aws_list_instances" })),
                })
                .await
                .unwrap();
        }
        store.close().await;
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            agentic(
                dir.path(),
                args,
                &[
                    ("AGENTIC_DATABASE_URL", db.url.as_str()),
                    ("RUST_LOG", "off"),
                ],
            )
        };
        let out = run(&["audit", "--repo", "acme/infra", "--json"]);
        assert!(
            out.status.success(),
            "{}: {}",
            db.backend,
            text(&out.stderr)
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 1, "{}", db.backend);
        assert_eq!(rows[0]["repo"], "acme/infra");
        assert_eq!(rows[0]["detail"]["tool"], "aws_list_instances");
        let out = run(&["audit", "--since", "1h"]);
        let lines = text(&out.stdout);
        assert_eq!(lines.lines().count(), 2, "{}: {lines}", db.backend);
        assert!(
            lines
                .lines()
                .next()
                .unwrap()
                .contains("  job 7  acme/infra  bob  tool.call  {\"tool\":\"aws_list_instances\"}"),
            "{lines}"
        );
        let out = run(&["audit", "--since", "2999-01-01T00:00:00Z"]);
        assert_eq!(text(&out.stdout), "", "{}", db.backend);
        let out = run(&["audit", "--since", "yesterday"]);
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("`yesterday` is neither an RFC 3339 time nor an age"));
    }
}

/// `agentic freeze` / `unfreeze`: stored (so every replica sees it), shown
/// by `agentic jobs`, audited, on both backends.
#[tokio::test(flavor = "multi_thread")]
async fn freeze_and_unfreeze_are_stored_shown_and_audited_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let postgres = support::postgres_db().await;
    let sqlite = format!("sqlite://{}", dir.path().join("freeze.db").display());
    for url in [sqlite.as_str(), postgres.url.as_str()] {
        let run = |args: &[&str]| {
            agentic(
                dir.path(),
                args,
                &[
                    ("AGENTIC_DATABASE_URL", url),
                    ("RUST_LOG", "off"),
                    ("USER", "ops-alice"),
                ],
            )
        };
        assert!(run(&["migrate"]).status.success(), "{url}");
        let out = run(&["freeze", "--reason", "  "]);
        assert!(!out.status.success(), "{url}: a reason is required");
        assert!(text(&out.stderr).contains("--reason"), "{url}");
        let out = run(&["freeze", "--reason", "incident 42"]);
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "applies are frozen (by ops-alice, reason: incident 42); `agentic unfreeze` lifts it\n",
            "{url}"
        );
        let table = text(&run(&["jobs"]).stdout);
        let first = table.lines().next().unwrap();
        assert!(
            first.starts_with("FROZEN since ")
                && first.ends_with(
                    " by ops-alice: incident 42 (no apply runs; `agentic unfreeze` lifts it)"
                ),
            "{url}: {table}"
        );
        // --json keeps stdout one array; the freeze goes to stderr.
        let out = run(&["jobs", "--json"]);
        let _: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(text(&out.stderr).starts_with("FROZEN since "), "{url}");
        let out = run(&["unfreeze", "--by", "ops-bob"]);
        assert_eq!(
            text(&out.stdout),
            "applies are no longer frozen (frozen by ops-alice for: incident 42); paused applies resume with `/agentic apply N`\n",
            "{url}"
        );
        assert!(!text(&run(&["jobs"]).stdout).contains("FROZEN"), "{url}");
        let out = run(&["unfreeze"]);
        assert_eq!(
            text(&out.stdout),
            "applies were not frozen; nothing changed\n",
            "{url}"
        );
        let log: serde_json::Value =
            serde_json::from_slice(&run(&["audit", "--json"]).stdout).unwrap();
        let flips: Vec<(String, String)> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"].as_str().unwrap().starts_with("freeze."))
            .map(|a| {
                (
                    a["action"].as_str().unwrap().to_string(),
                    a["actor"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            flips,
            [
                ("freeze.set".to_string(), "ops-alice".to_string()),
                ("freeze.lifted".to_string(), "ops-bob".to_string())
            ],
            "{url}"
        );
        // A name bound to no repository: nothing to forget.
        let out = run(&["repos", "forget", "acme/infra"]);
        assert!(out.status.success(), "{url}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "`acme/infra` was bound to no repository; nothing changed\n",
            "{url}"
        );
    }
}
