//! Plans: any steps that read as a plan hash without panicking, a plan
//! with one step changed hashes differently, and the rendering shows every
//! step's action, in order.
#![no_main]
use agentic::aws::action::PlanStep;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(steps) = serde_json::from_slice::<Vec<PlanStep>>(data) else {
        return;
    };
    let hash = agentic::plan::hash(&steps);
    if let Some(first) = steps.first() {
        let mut other = steps.clone();
        other[0].resource = format!("{}x", first.resource);
        assert_ne!(hash, agentic::plan::hash(&other));
    }
    let redactor = agentic::redact::Redactor::new(Vec::<String>::new());
    let text = agentic::handlers::plan::render::steps_text(&steps, &[], &redactor);
    let mut at = 0;
    for (i, step) in steps.iter().enumerate() {
        let name = format!(
            "{}. **{}** `{}`",
            i + 1,
            step.risk.as_str(),
            step.action.iam_action()
        );
        let found = text[at..].find(&name);
        assert!(found.is_some(), "step {name} not shown in order: {text}");
        at += found.unwrap() + name.len();
    }
});
