//! The repository's settings and the operator's policy file, on any text:
//! parsing never panics, and settings that parse check without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(config) = agentic::repo_config::RepoConfig::parse(text) {
        let _ = config.ignored();
        let _ = config.ci.settle();
        for command in agentic::command::Command::all() {
            let _ = config.required_role(&command);
        }
    }
    let _ = agentic::ceilings::Policy::parse(text);
});
