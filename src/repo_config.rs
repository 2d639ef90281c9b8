//! The repository's own settings, `.github/agentic.yml`, read from the
//! default branch only: a pull request cannot change its own rules.
//!
//! Unknown keys are refused (a typo must not silently do nothing), every
//! key has a documented default (`docs/agentic.example.yml`), and nothing a
//! broken or missing file says can widen a permission: a command's role in
//! the file only ever raises the built-in one.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::command::Command;
use crate::domain::{RiskTier, Role, Severity};

/// Where the file lives in the repository.
pub const PATH: &str = ".github/agentic.yml";

/// Files a review leaves out unless the repository says otherwise: lock
/// files, vendored and generated code, minified assets.
pub const DEFAULT_IGNORE: &[&str] = &[
    "**/*.lock",
    "**/package-lock.json",
    "**/pnpm-lock.yaml",
    "**/yarn.lock",
    "**/go.sum",
    "**/vendor/**",
    "**/node_modules/**",
    "**/*.min.js",
    "**/*.min.css",
    "**/*.generated.*",
    "**/*_generated.*",
    "**/*.pb.go",
];

/// `review.fail_on`: a severity, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    None,
    Nit,
    Minor,
    Major,
    Critical,
}

impl FailOn {
    /// The least severity that fails the check run, if any does.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::None => None,
            FailOn::Nit => Some(Severity::Nit),
            FailOn::Minor => Some(Severity::Minor),
            FailOn::Major => Some(Severity::Major),
            FailOn::Critical => Some(Severity::Critical),
        }
    }
}

/// `review:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewConfig {
    /// Review pull requests when they open, are marked ready, or get pushes.
    pub auto: bool,
    /// Review drafts too.
    pub drafts: bool,
    /// Review pull requests opened by bots too.
    pub bots: bool,
    /// Path globs a review leaves out (replaces the default list).
    pub ignore: Vec<String>,
    /// Most inline comments in one review, highest severity first.
    pub max_comments: u32,
    /// Findings below this are not posted.
    pub min_severity: Severity,
    /// Extra guidance for the reviewer, from the repository's owners.
    pub instructions: String,
    /// The severity that makes the check run fail.
    pub fail_on: FailOn,
    /// The repository's own guidelines: the first of these files that
    /// exists on the default branch goes into review and ask prompts.
    pub guideline_files: Vec<String>,
    /// Instructions for the files a glob matches, and only for them.
    pub path_instructions: Vec<PathInstruction>,
    /// Keep one walkthrough comment per pull request (overview and a table
    /// of what each file changes), edited on every push.
    pub walkthrough: bool,
}

/// Files read for the repository's own guidelines unless it says
/// otherwise (`review.guideline_files`), the first that exists.
pub const DEFAULT_GUIDELINE_FILES: &[&str] = &[
    "AGENTS.md",
    "CLAUDE.md",
    ".github/copilot-instructions.md",
    "CONTRIBUTING.md",
];

/// Most `review.guideline_files` entries (each one may cost a request).
pub const MAX_GUIDELINE_FILES: usize = 8;
/// Most `review.path_instructions` entries.
pub const MAX_PATH_INSTRUCTIONS: usize = 50;

/// `review.path_instructions[]`: `instructions` for the files `path` (a
/// glob) matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathInstruction {
    pub path: String,
    pub instructions: String,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            auto: true,
            drafts: false,
            bots: false,
            ignore: DEFAULT_IGNORE.iter().map(|s| s.to_string()).collect(),
            max_comments: 20,
            min_severity: Severity::Minor,
            instructions: String::new(),
            fail_on: FailOn::None,
            guideline_files: DEFAULT_GUIDELINE_FILES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            path_instructions: Vec::new(),
            walkthrough: true,
        }
    }
}

impl ReviewConfig {
    /// `guideline_files` and `path_instructions` as a problem to say once:
    /// a path that is not one in the repository, a glob that is not one,
    /// more entries than are read.
    fn check_guidance(&self) -> Result<(), String> {
        if self.guideline_files.len() > MAX_GUIDELINE_FILES {
            return Err(format!(
                "does not parse: `review.guideline_files`: {} files, at most {MAX_GUIDELINE_FILES} are read",
                self.guideline_files.len()
            ));
        }
        for path in &self.guideline_files {
            let inside = !path.is_empty()
                && path.len() <= 255
                && !path.chars().any(char::is_control)
                && !path.starts_with('/')
                && path
                    .split('/')
                    .all(|p| !p.is_empty() && p != "." && p != "..");
            if !inside {
                return Err(format!(
                    "does not parse: `review.guideline_files`: `{path}` is not a path inside the repository"
                ));
            }
        }
        if self.path_instructions.len() > MAX_PATH_INSTRUCTIONS {
            return Err(format!(
                "does not parse: `review.path_instructions`: {} entries, at most {MAX_PATH_INSTRUCTIONS}",
                self.path_instructions.len()
            ));
        }
        for (i, p) in self.path_instructions.iter().enumerate() {
            Glob::new(&p.path).map_err(|e| {
                format!(
                    "does not parse: `review.path_instructions[{i}].path`: `{}` is not a glob ({e})",
                    p.path
                )
            })?;
        }
        Ok(())
    }

    /// Each path instruction with its glob compiled (all were checked
    /// when the file was read).
    pub fn path_globs(&self) -> Vec<(globset::GlobMatcher, &PathInstruction)> {
        self.path_instructions
            .iter()
            .filter_map(|p| Some((Glob::new(&p.path).ok()?.compile_matcher(), p)))
            .collect()
    }
}

/// `describe:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DescribeConfig {
    pub enabled: bool,
}

impl Default for DescribeConfig {
    fn default() -> Self {
        DescribeConfig { enabled: true }
    }
}

/// `ci:`: explaining failed checks on pull requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CiConfig {
    /// Explain a check run that fails on a pull request's head.
    pub explain: bool,
    /// Explain failures on pull requests opened by bots too.
    pub bots: bool,
    /// Names of check runs never explained (compared ignoring case).
    pub ignore: Vec<String>,
    /// The longest wait, in seconds from a failure, for the head's other
    /// check runs to finish before explaining what failed so far.
    pub settle_seconds: u64,
}

/// The longest `ci.settle_seconds` honoured.
pub const MAX_SETTLE_SECONDS: u64 = 3_600;

impl Default for CiConfig {
    fn default() -> Self {
        CiConfig {
            explain: true,
            bots: false,
            ignore: Vec::new(),
            settle_seconds: 600,
        }
    }
}

impl CiConfig {
    /// Whether check run `name` is one `ci.ignore` names.
    pub fn ignores(&self, name: &str) -> bool {
        let name = name.trim();
        self.ignore
            .iter()
            .any(|i| i.trim().eq_ignore_ascii_case(name))
    }

    /// How long to wait for the head's other checks.
    pub fn settle(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settle_seconds.min(MAX_SETTLE_SECONDS))
    }
}

/// `commands.<name>:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// The least role for the command; only stricter than the default.
    pub min_role: Role,
}

/// The commands the file may configure (`commands.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandName {
    Help,
    Ask,
    Review,
    Describe,
    Plan,
    Approve,
    Apply,
    Cancel,
    Status,
}

impl CommandName {
    /// An exhaustive match: a new command does not compile until the file
    /// can configure it.
    pub fn of(command: &Command) -> CommandName {
        match command {
            Command::Help => CommandName::Help,
            Command::Ask { .. } => CommandName::Ask,
            Command::Review => CommandName::Review,
            Command::Describe => CommandName::Describe,
            Command::Plan { .. } => CommandName::Plan,
            Command::Approve { .. } => CommandName::Approve,
            Command::Apply { .. } => CommandName::Apply,
            Command::Cancel { .. } => CommandName::Cancel,
            Command::Status => CommandName::Status,
        }
    }
}

/// `aws:`: what this repository's requests may touch. Without it, every
/// AWS tool is refused. Nothing here is taken from a model or a pull
/// request: the file is read from the default branch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsScope {
    /// The AWS account id the bot's credentials must be in.
    #[serde(default)]
    pub account: Option<String>,
    /// Regions that may be read or changed (at least one).
    pub regions: Vec<String>,
    /// Instance types that may be launched.
    #[serde(default)]
    pub instance_types: Vec<String>,
    /// Images instances may be launched from.
    #[serde(default)]
    pub amis: Vec<String>,
    /// Most instances one plan may launch.
    #[serde(default)]
    pub max_instances: u32,
    /// `key=value`: a resource may be touched only if it carries this tag,
    /// read from AWS (never taken from the model).
    #[serde(default)]
    pub required_tag: Option<String>,
    /// Bucket-name globs that may be read or changed.
    #[serde(default)]
    pub buckets: Vec<String>,
    /// The label that turns an issue into a planning request (its title
    /// and body are the request).
    #[serde(default = "default_trigger_label")]
    pub trigger_label: String,
    /// Approval rules stricter than the built-in ones, never looser.
    #[serde(default)]
    pub approvals: crate::plan::ApprovalRules,
    /// Managed-policy ARNs a plan may attach to a user even though they
    /// are admin-equivalent (a critical least-privilege finding); any
    /// other such policy is refused when planned. Exact ARNs, no globs:
    /// each one is a decision the repository's owners made by name.
    #[serde(default)]
    pub attachable_policies: Vec<String>,
    /// What the operator's ceiling leaves (`AGENTIC_POLICY_FILE`); never
    /// read from the repository's file.
    #[serde(skip)]
    pub bounds: Option<Bounds>,
}

/// What a ceiling leaves in a repository's scope, kept with the scope so
/// the checks that run on AWS's facts (an account, a bucket's name, a
/// plan's tier) see it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    /// The policy file's entry that applies, as written.
    pub pattern: String,
    pub accounts: Vec<String>,
    pub buckets: Vec<String>,
    /// Bucket globs that more specific entries of the policy name inside
    /// this entry's: those buckets are theirs, not this repository's.
    pub claimed: Vec<String>,
    pub max_tier: RiskTier,
    pub iam: bool,
}

fn default_trigger_label() -> String {
    "agentic".to_string()
}

impl AwsScope {
    /// The required tag as (key, value).
    pub fn tag(&self) -> Option<(&str, &str)> {
        self.required_tag.as_deref().and_then(|t| t.split_once('='))
    }

    fn check(&self) -> Result<(), String> {
        if self.regions.is_empty() {
            return Err("does not parse: `aws.regions`: name at least one region".into());
        }
        if let Some(t) = &self.required_tag {
            if t.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
                return Err(format!(
                    "does not parse: `aws.required_tag`: `{t}` is not `key=value`"
                ));
            }
        }
        for arn in &self.attachable_policies {
            if !arn.starts_with("arn:") || !arn.contains(":policy/") || arn.contains(['*', '?']) {
                return Err(format!(
                    "does not parse: `aws.attachable_policies`: `{arn}` is not a managed policy's ARN (exact, without wildcards)"
                ));
            }
        }
        for glob in &self.buckets {
            Glob::new(glob).map_err(|e| {
                format!("does not parse: `aws.buckets`: `{glob}` is not a glob ({e})")
            })?;
        }
        self.approvals
            .check()
            .map_err(|e| format!("does not parse: `aws.approvals`: {e}"))
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepoConfig {
    pub review: ReviewConfig,
    pub describe: DescribeConfig,
    pub ci: CiConfig,
    pub commands: BTreeMap<CommandName, CommandConfig>,
    pub aws: Option<AwsScope>,
}

/// Why the file was not used as written: said to the people on the thread.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{PATH}` on the default branch {what}; {instead}")]
pub struct ConfigProblem {
    /// "does not parse (line 3, column 5): `review.auot`: unknown field …"
    pub what: String,
    /// What is used instead.
    pub instead: Instead,
}

/// What is used instead of a file with a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instead {
    /// The whole file's defaults (it does not parse).
    Defaults,
    /// The file, without AWS.
    NoAws,
    /// The file, with its AWS scope cut to the operator's ceiling.
    Ceiling,
}

impl std::fmt::Display for Instead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Instead::Defaults => "I am using the defaults until it is fixed",
            Instead::NoAws => "no AWS tool runs for this repository until it is fixed",
            Instead::Ceiling => "the ceiling applies instead",
        })
    }
}

impl RepoConfig {
    /// Parse the file's text; a problem names the line, column and field.
    pub fn parse(text: &str) -> Result<RepoConfig, String> {
        if text.trim().is_empty() {
            return Ok(RepoConfig::default());
        }
        let de = serde_norway::Deserializer::from_str(text);
        let config: RepoConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = inner
                .location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            let full = inner.to_string();
            // The library's message repeats the position and its own form
            // of the path (`review: …`); keep ours.
            let message = full.split(" at line ").next().unwrap_or(&full);
            let message = match message.split_once(": ") {
                Some((prefix, rest)) if !prefix.contains(' ') => rest,
                _ => message,
            };
            if path == "." || path.is_empty() {
                format!("does not parse{at}: {message}")
            } else {
                format!("does not parse{at}: `{path}`: {message}")
            }
        })?;
        for glob in &config.review.ignore {
            Glob::new(glob).map_err(|e| {
                format!("does not parse: `review.ignore`: `{glob}` is not a glob ({e})")
            })?;
        }
        config.review.check_guidance()?;
        if let Some(aws) = &config.aws {
            aws.check()?;
        }
        Ok(config)
    }

    /// The least role `command` needs here: the built-in one, raised (never
    /// lowered) by the file.
    pub fn required_role(&self, command: &Command) -> Role {
        let built_in = crate::authz::required_role(command);
        match self.commands.get(&CommandName::of(command)) {
            Some(c) => built_in.max(c.min_role),
            None => built_in,
        }
    }

    /// The ignore globs, compiled.
    pub fn ignored(&self) -> GlobSet {
        let mut set = GlobSetBuilder::new();
        for glob in &self.review.ignore {
            if let Ok(g) = Glob::new(glob) {
                set.add(g);
            }
        }
        set.build().unwrap_or_else(|_| GlobSet::empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_the_defaults() {
        let example = include_str!("../docs/agentic.example.yml");
        assert_eq!(RepoConfig::parse(example).unwrap(), RepoConfig::default());
        assert_eq!(RepoConfig::parse("").unwrap(), RepoConfig::default());
    }

    #[test]
    fn problems_name_the_line_and_the_field() {
        let e = RepoConfig::parse("review:\n  auto: true\n  auot: false\n").unwrap_err();
        assert!(
            e.starts_with("does not parse (line 3, column 3): `review.auot`: unknown field `auot`, expected one of `auto`"),
            "{e}"
        );
        let e = RepoConfig::parse("review:\n  max_comments: lots\n").unwrap_err();
        assert!(e.contains("`review.max_comments`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = RepoConfig::parse("commands:\n  deploy:\n    min_role: admin\n").unwrap_err();
        assert!(e.contains("unknown variant `deploy`"), "{e}");
        let e = RepoConfig::parse("review:\n  ignore: ['a/[b']\n").unwrap_err();
        assert!(e.contains("`review.ignore`"), "{e}");
    }

    #[test]
    fn a_role_in_the_file_only_ever_raises_the_bar() {
        let c = RepoConfig::parse(
            "commands:\n  ask:\n    min_role: maintain\n  apply:\n    min_role: read\n",
        )
        .unwrap();
        let ask = Command::Ask {
            question: "q".into(),
        };
        assert_eq!(c.required_role(&ask), Role::Maintain);
        assert_eq!(
            c.required_role(&Command::Apply { plan: None }),
            Role::Write,
            "not lowered"
        );
        assert_eq!(c.required_role(&Command::Help), Role::None);
    }

    #[test]
    fn the_aws_scope_is_checked_and_absent_by_default() {
        assert_eq!(RepoConfig::default().aws, None);
        let c = RepoConfig::parse(
            "aws:\n  regions: [eu-west-1]\n  required_tag: agentic:repo=acme/infra\n  buckets: ['acme-*']\n",
        )
        .unwrap();
        let aws = c.aws.unwrap();
        assert_eq!(aws.tag(), Some(("agentic:repo", "acme/infra")));
        assert_eq!(aws.max_instances, 0);
        let e = RepoConfig::parse("aws:\n  regions: []\n").unwrap_err();
        assert!(e.contains("`aws.regions`"), "{e}");
        let e =
            RepoConfig::parse("aws:\n  regions: [eu-west-1]\n  required_tag: nope\n").unwrap_err();
        assert!(e.contains("`aws.required_tag`"), "{e}");
        let e = RepoConfig::parse("aws:\n  regions: [eu-west-1]\n  region: x\n").unwrap_err();
        assert!(e.contains("unknown field `region`"), "{e}");
        // Approval rules: stricter parses, looser is refused.
        let strict = RepoConfig::parse(
            "aws:\n  regions: [eu-west-1]\n  approvals:\n    destructive_approvals: 2\n    destructive_role: admin\n",
        )
        .unwrap();
        assert_eq!(strict.aws.unwrap().approvals.destructive_approvals, 2);
        let e = RepoConfig::parse(
            "aws:\n  regions: [eu-west-1]\n  approvals:\n    destructive_role: write\n",
        )
        .unwrap_err();
        assert!(
            e.contains("`aws.approvals`: `destructive_role` may not be below"),
            "{e}"
        );
    }

    #[test]
    fn attachable_policies_are_exact_managed_policy_arns_and_none_by_default() {
        let none = RepoConfig::parse("aws:\n  regions: [eu-west-1]\n").unwrap();
        assert!(none.aws.unwrap().attachable_policies.is_empty());
        let listed = RepoConfig::parse(
            "aws:\n  regions: [eu-west-1]\n  attachable_policies: ['arn:aws:iam::123456789012:policy/BreakGlass']\n",
        )
        .unwrap();
        assert_eq!(
            listed.aws.unwrap().attachable_policies,
            ["arn:aws:iam::123456789012:policy/BreakGlass"]
        );
        for bad in ["arn:aws:iam::123456789012:policy/*", "AdministratorAccess"] {
            let e = RepoConfig::parse(&format!(
                "aws:\n  regions: [eu-west-1]\n  attachable_policies: ['{bad}']\n"
            ))
            .unwrap_err();
            assert!(e.contains("`aws.attachable_policies`"), "{e}");
        }
    }

    #[test]
    fn default_ignores_cover_lock_vendored_generated_and_minified_files() {
        let set = RepoConfig::default().ignored();
        for path in [
            "Cargo.lock",
            "web/package-lock.json",
            "vendor/github.com/x/y.go",
            "static/app.min.js",
            "api/service.pb.go",
        ] {
            assert!(set.is_match(path), "{path}");
        }
        assert!(!set.is_match("src/main.rs"));
    }
}
