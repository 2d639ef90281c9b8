//! Properties of the code that takes untrusted input, for any input (issue
//! 18, bad input), on stable Rust: parsing never panics (commands, webhook
//! payloads, patches, repository settings, the operator's policy); nothing
//! untrusted leaves its fence, and the fence changes no byte of code; any
//! change to a plan changes its hash. The redactor's and the plan
//! renderer's properties live beside them (`src/redact.rs`,
//! `src/handlers/plan/render.rs`). The same inputs are fuzzed with
//! cargo-fuzz (`fuzz/`, see docs/RELIABILITY.md).

use agentic::agent::tools::Fence;
use agentic::aws::action::{AwsAction, PlanStep};
use agentic::diff::{Patch, Side};
use agentic::domain::RiskTier;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Text that looks like what the parsers read, and then some: Markdown,
/// YAML, diff and JSON punctuation, commands, tags, non-ASCII.
fn texty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/agentic ".to_string()),
        Just("/agentic approve 3".to_string()),
        Just("```".to_string()),
        Just("`".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("@@ -1,3 +1,4 @@".to_string()),
        Just("\n+".to_string()),
        Just("\n-".to_string()),
        Just("\n ".to_string()),
        Just("\\ No newline at end of file".to_string()),
        Just("review:\n  ".to_string()),
        Just(": ".to_string()),
        Just("- ".to_string()),
        Just("<|im_end|>".to_string()),
        Just("</s>".to_string()),
        Just("<!-- ".to_string()),
        Just(" -->".to_string()),
        Just("\u{202E}".to_string()),
        Just("\u{0}".to_string()),
        "[a-z0-9 ]{0,12}",
        "\\PC{0,8}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

/// The real payloads of the webhook fixtures.
fn fixtures() -> Vec<(String, Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(event) = name.strip_suffix(".json").and_then(|n| n.split('.').next()) {
            let value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            all.push((event.to_string(), value));
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// `value` with the node `path` picks (indices taken modulo each level's
/// size) replaced by `by`.
fn replace_at(value: &mut Value, path: &[usize], by: Value) {
    let Some((first, rest)) = path.split_first() else {
        *value = by;
        return;
    };
    let child = match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(first % map.len()).unwrap().clone();
            map.get_mut(&key)
        }
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            items.get_mut(first % n)
        }
        _ => None,
    };
    match child {
        Some(child) => replace_at(child, rest, by),
        None => *value = by,
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        texty().prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{ "number": 1 }])),
    ]
}

fn step() -> impl Strategy<Value = PlanStep> {
    (
        0..AwsAction::ALL.len(),
        proptest::option::of("[a-z0-9-]{1,12}"),
        "[a-z0-9-]{1,16}",
        proptest::collection::btree_map("[a-z_]{1,8}", "[ -~]{0,12}", 0..4),
        0..RiskTier::ALL.len(),
    )
        .prop_map(|(action, region, resource, args, risk)| {
            let action = AwsAction::ALL[action];
            PlanStep {
                service: action.service().to_string(),
                action,
                region,
                resource,
                arguments: json!(args),
                risk: RiskTier::ALL[risk],
            }
        })
}

/// One change to a plan: which step, and what.
#[derive(Debug, Clone)]
enum Change {
    Service(String),
    Action(usize),
    Region(Option<String>),
    Resource(String),
    Argument(String, String),
    Risk(usize),
    Swap(usize),
    Drop,
    Duplicate,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        "[a-z0-9]{1,5}".prop_map(Change::Service),
        (0..AwsAction::ALL.len()).prop_map(Change::Action),
        proptest::option::of("[a-z0-9-]{1,12}").prop_map(Change::Region),
        "[a-z0-9-]{1,16}".prop_map(Change::Resource),
        ("[a-z_]{1,8}", "[ -~]{0,12}").prop_map(|(k, v)| Change::Argument(k, v)),
        (0..RiskTier::ALL.len()).prop_map(Change::Risk),
        any::<usize>().prop_map(Change::Swap),
        Just(Change::Drop),
        Just(Change::Duplicate),
    ]
}

/// `steps` with `change` made to step `at` (modulo), or `None` when the
/// change would leave the plan as it was (the same value again, a swap of
/// equal steps).
fn changed(steps: &[PlanStep], at: usize, change: &Change) -> Option<Vec<PlanStep>> {
    let mut out = steps.to_vec();
    let i = at % out.len();
    let s = &mut out[i];
    match change {
        Change::Service(v) => s.service = v.clone(),
        Change::Action(a) => s.action = AwsAction::ALL[*a],
        Change::Region(r) => s.region = r.clone(),
        Change::Resource(r) => s.resource = r.clone(),
        Change::Argument(k, v) => {
            s.arguments[k] = json!(v);
        }
        Change::Risk(r) => s.risk = RiskTier::ALL[*r],
        Change::Swap(j) => out.swap(i, j % steps.len()),
        Change::Drop => {
            out.remove(i);
        }
        Change::Duplicate => out.insert(i, steps[i].clone()),
    }
    (out != steps).then_some(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_command_parser_never_panics(body in texty()) {
        let _ = agentic::command::parse_comment(&body);
        let _ = agentic::command::prose_text(&body);
        let _ = agentic::command::PlanRef::parse(&body);
    }

    #[test]
    fn webhook_parsing_never_panics_on_any_bytes(
        event in proptest::sample::select(
            agentic::event::HANDLED_EVENTS.iter().copied().chain(["push"]).collect::<Vec<_>>()
        ),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = agentic::event::parse(event, &body);
        let _ = agentic::intake::prepare(event, "d", &body);
    }

    #[test]
    fn webhook_parsing_never_panics_on_a_real_payload_changed_anywhere(
        which in any::<usize>(),
        path in proptest::collection::vec(any::<usize>(), 0..6),
        by in any_json(),
    ) {
        let all = fixtures();
        let (event, mut payload) = all[which % all.len()].clone();
        replace_at(&mut payload, &path, by);
        let body = serde_json::to_vec(&payload).unwrap();
        let _ = agentic::intake::prepare(&event, "d", &body);
    }

    #[test]
    fn the_patch_parser_never_panics(patch in texty()) {
        if let Ok(p) = Patch::parse(&patch) {
            let _ = p.numbered();
            for side in [Side::Left, Side::Right] {
                for (n, _) in p.lines_on(side) {
                    let _ = p.text_at(side, n);
                    let _ = p.can_comment(side, Some(n.saturating_sub(3)), n);
                }
            }
        }
        let _ = agentic::diff::split_git_diff(&patch);
    }

    #[test]
    fn the_settings_parsers_never_panic(text in texty()) {
        let _ = agentic::repo_config::RepoConfig::parse(&text);
        let _ = agentic::ceilings::Policy::parse(&text);
    }

    #[test]
    fn nothing_untrusted_leaves_its_fence(text in texty()) {
        let fence = Fence::new();
        let tag = fence.tag();
        let wrapped = fence.wrap("a test's text", &text);
        let open = format!("<{tag} source=\"a test's text\">\n");
        let close = format!("\n</{tag}>");
        prop_assert!(wrapped.starts_with(&open));
        prop_assert!(wrapped.ends_with(&close));
        // The tag appears once to open and once to close, nowhere between.
        prop_assert_eq!(wrapped.matches(&tag).count(), 2);
    }

    #[test]
    fn the_fence_changes_no_byte_of_code_without_a_chat_token(text in texty()) {
        prop_assume!(!agentic::agent::tools::holds_chat_token(&text));
        let fence = Fence::new();
        let wrapped = fence.wrap("code", &text);
        let open = format!("<{} source=\"code\">\n", fence.tag());
        let inner = &wrapped[open.len()..wrapped.len() - fence.tag().len() - 4];
        prop_assert_eq!(inner, text.as_str());
    }

    #[test]
    fn any_change_to_a_plan_changes_its_hash(
        steps in proptest::collection::vec(step(), 1..6),
        at in any::<usize>(),
        change in change(),
    ) {
        if let Some(other) = changed(&steps, at, &change) {
            prop_assert_ne!(agentic::plan::hash(&steps), agentic::plan::hash(&other));
        }
        // And the same plan, rebuilt, hashes the same.
        prop_assert_eq!(agentic::plan::hash(&steps), agentic::plan::hash(&steps.clone()));
    }
}
