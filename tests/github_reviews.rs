//! The GitHub calls a review makes, through the real client against the
//! fake GitHub, which is as strict as GitHub: a review with one comment off
//! the diff fails whole (422); a check-run request takes at most 50
//! annotations; a completed run needs a conclusion; buttons have short
//! labels. With `review::plan` deciding what goes inline, a review is
//! accepted whatever lines the model named.

mod support;

use std::collections::{HashMap, HashSet};

use agentic::diff::Patch;
use agentic::domain::Severity;
use agentic::github::{Access, ContentQuota, GitHub, GitHubApp, GitHubError, TokenScope};
use agentic::repo_config::ReviewConfig;
use agentic::review::{plan, summary, Finding};
use serde_json::{json, Value};
use support::github::{FakeGitHub, Pull, Thread, APP_ID, BOT, INSTALLATION, REPO};

const HEAD: &str = "0123456789abcdef0123456789abcdef01234567";
const PATCH: &str = "@@ -1,3 +1,4 @@\n fn main() {\n-    old();\n+    new();\n+    more();\n }";

async fn client() -> (FakeGitHub, GitHub) {
    agentic::install_crypto_provider();
    let gh = FakeGitHub::start().await;
    gh.thread(
        44,
        Thread {
            title: "t".into(),
            body: "b".into(),
            author: "alice-ops".into(),
            author_type: String::new(),
            pull: Some(Pull {
                head_sha: HEAD.into(),
                head_ref: "topic".into(),
                base_ref: "main".into(),
                files: vec![("src/main.rs".into(), PATCH.into())],
                ..Default::default()
            }),
            comments: vec![],
        },
    );
    let store = agentic::store::Store::open("sqlite::memory:")
        .await
        .unwrap();
    let key =
        secrecy::SecretString::from(std::fs::read_to_string(support::test_key_path()).unwrap());
    let app = GitHubApp::new(APP_ID, &key, &gh.url, ContentQuota::default(), store).unwrap();
    let github = app
        .client(TokenScope {
            installation: INSTALLATION,
            repo: Some(REPO.into()),
            access: Access::Write,
        })
        .await
        .unwrap();
    (gh, github)
}

/// A finding on new-side `line` of PATCH, quoting its text as the
/// contract asks (or text no line has).
fn finding(line: u32, severity: Severity, body: &str) -> Finding {
    let patch = Patch::parse(PATCH).unwrap();
    Finding {
        path: "src/main.rs".into(),
        line,
        start_line: None,
        side: agentic::diff::Side::Right,
        anchor: patch
            .text_at(agentic::diff::Side::Right, line)
            .unwrap_or("(no such line)")
            .into(),
        start_anchor: None,
        severity,
        body: body.into(),
        suggestion: None,
    }
}

#[tokio::test]
async fn one_comment_off_the_diff_fails_the_whole_review_so_plan_keeps_it_out() {
    let (gh, github) = client().await;
    let on = json!({ "path": "src/main.rs", "line": 2, "side": "RIGHT", "body": "ok" });
    let off =
        json!({ "path": "src/main.rs", "line": 9, "side": "RIGHT", "body": "not on the diff" });
    let err = github
        .create_review(REPO, 44, HEAD, "summary", &[on.clone(), off])
        .await
        .unwrap_err();
    assert!(
        matches!(err, GitHubError::Status { status: 422, .. }),
        "{err}"
    );
    assert!(gh.take_writes().is_empty(), "all or nothing");

    // What the model named, planned against the parsed patch.
    let patches = HashMap::from([("src/main.rs".to_string(), Patch::parse(PATCH).unwrap())]);
    let mut suggestion = finding(2, Severity::Major, "call the fallible one");
    suggestion.suggestion = Some("    new()?;".into());
    let planned = plan(
        vec![
            suggestion,
            finding(9, Severity::Critical, "far away"),
            finding(3, Severity::Minor, "more?"),
        ],
        &patches,
        &ReviewConfig::default(),
        &HashSet::new(),
    );
    let comments: Vec<Value> = planned.inline.iter().map(|c| c.to_json()).collect();
    let text = summary("Two calls change.", &planned);
    let id = github
        .create_review(REPO, 44, HEAD, &text, &comments)
        .await
        .unwrap();
    assert!(id > 0);
    let writes = gh.take_writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].body["event"], "COMMENT",
        "never approve or request changes"
    );
    assert_eq!(writes[0].body["commit_id"], HEAD);
    assert!(writes[0].body["body"]
        .as_str()
        .unwrap()
        .contains("`src/main.rs` line 9 (line not in the diff): far away"));
    let posted = github.review_comments(REPO, 44).await.unwrap();
    assert_eq!(posted.len(), 2);
    assert!(posted.iter().all(|c| c.user.as_ref().unwrap().login == BOT));
    assert!(
        posted[0].body.contains("```suggestion\n    new()?;\n```"),
        "{}",
        posted[0].body
    );
    gh.assert_all_seen();
}

#[tokio::test]
async fn check_runs_take_fifty_annotations_a_request_and_need_a_conclusion() {
    let (gh, github) = client().await;
    let id = github
        .create_check_run(
            REPO,
            "agentic review",
            HEAD,
            "pr:44",
            &json!({ "title": "Reviewing…", "summary": "Reviewing 1 file." }),
        )
        .await
        .unwrap();
    let annotation = |n: u32| json!({ "path": "src/main.rs", "start_line": n, "end_line": n, "annotation_level": "warning", "message": "m" });
    let batch = |from: u32, count: u32| -> Value {
        json!({ "output": { "title": "t", "summary": "s", "annotations": (from..from + count).map(annotation).collect::<Vec<_>>() } })
    };
    github
        .update_check_run(REPO, id, &batch(1, 50))
        .await
        .unwrap();
    let too_many = github
        .update_check_run(REPO, id, &batch(51, 51))
        .await
        .unwrap_err();
    assert!(
        matches!(too_many, GitHubError::Status { status: 422, .. }),
        "{too_many}"
    );
    github
        .update_check_run(REPO, id, &batch(51, 10))
        .await
        .unwrap();
    let no_conclusion = github
        .update_check_run(REPO, id, &json!({ "status": "completed" }))
        .await
        .unwrap_err();
    assert!(matches!(
        no_conclusion,
        GitHubError::Status { status: 422, .. }
    ));
    let long_label = json!({ "status": "completed", "conclusion": "neutral",
        "actions": [{ "label": "Re-run the whole review", "identifier": "rerun", "description": "Review again" }] });
    assert!(github
        .update_check_run(REPO, id, &long_label)
        .await
        .is_err());
    let done = json!({ "status": "completed", "conclusion": "neutral",
        "actions": [{ "label": "Re-run review", "identifier": "rerun", "description": "Review the whole change again" }] });
    github.update_check_run(REPO, id, &done).await.unwrap();
    let run = gh.inner.lock().unwrap().check_runs[&id].clone();
    assert_eq!(
        run["annotations"].as_array().unwrap().len(),
        60,
        "annotations append across updates"
    );
    assert_eq!(
        (run["status"].as_str(), run["conclusion"].as_str()),
        (Some("completed"), Some("neutral"))
    );
    assert_eq!(
        gh.take_writes().len(),
        4,
        "the create and three accepted updates"
    );
}
