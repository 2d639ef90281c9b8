//! Scope ceilings: the operator's limits on what each repository's
//! `.github/agentic.yml` may ask for (`AGENTIC_POLICY_FILE`).
//!
//! A repository's own file is written by whoever can merge to its default
//! branch; the ceiling is written by whoever runs the bot. With a policy
//! file, a repository gets the intersection of the two, or no AWS at all
//! when no entry matches it. Without one, repositories set their own scope
//! (and the server says so at start-up). In both cases `aws.required_tag`
//! must name the repository itself, so that one repository can never claim
//! another's resources.

use std::collections::BTreeMap;
use std::path::Path;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;

use crate::domain::{RiskTier, Role};
use crate::plan::ApprovalRules;
use crate::repo_config::{AwsScope, ConfigProblem, Instead};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    repositories: BTreeMap<String, Entry>,
}

/// One entry of `repositories`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Without it, the repositories the entry matches get no AWS tools.
    #[serde(default)]
    pub aws: Option<AwsCeiling>,
}

/// The most a matching repository's `aws:` section may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsCeiling {
    /// Accounts the bot's credentials may be in (empty: any).
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Regions a repository may name (at least one).
    pub regions: Vec<String>,
    /// Bucket globs a repository's own globs must fall within (empty: no
    /// bucket).
    #[serde(default)]
    pub buckets: Vec<String>,
    /// The highest tier a plan may reach.
    #[serde(default = "destructive")]
    pub max_tier: RiskTier,
    /// Instance types a repository may launch (absent: any it names).
    #[serde(default)]
    pub instance_types: Option<Vec<String>>,
    /// Images a repository may launch from (absent: any it names).
    #[serde(default)]
    pub amis: Option<Vec<String>>,
    /// Most instances one plan may launch (absent: what the repository
    /// says).
    #[serde(default)]
    pub max_instances: Option<u32>,
    /// Admin-equivalent managed policies a repository may list in its
    /// `aws.attachable_policies` (absent: none).
    #[serde(default)]
    pub attachable_policies: Vec<String>,
    /// IAM may be read and changed at all (with the required tag).
    #[serde(default = "yes")]
    pub iam: bool,
    /// The repository must name `aws.required_tag` (its own name): without
    /// one, every instance in its regions would be in its scope. On unless
    /// the operator turns it off for an entry.
    #[serde(default = "yes")]
    pub require_tag: bool,
    /// Floors for the repository's `aws.approvals`.
    #[serde(default)]
    pub write_needs_second_person: bool,
    #[serde(default = "one")]
    pub destructive_approvals: u32,
    #[serde(default = "maintain")]
    pub destructive_role: Role,
}

fn destructive() -> RiskTier {
    RiskTier::Destructive
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn maintain() -> Role {
    Role::Maintain
}

impl AwsCeiling {
    fn floor(&self) -> ApprovalRules {
        ApprovalRules {
            write_needs_second_person: self.write_needs_second_person,
            destructive_approvals: self.destructive_approvals,
            destructive_role: self.destructive_role,
        }
    }
}

pub use crate::repo_config::Bounds;

/// A parsed policy file.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    pattern: String,
    matcher: GlobMatcher,
    /// No wildcard: an exact repository name, which beats every glob.
    exact: bool,
    /// Characters that are not wildcards: more is more specific.
    literal: usize,
    entry: Entry,
}

/// Which entry applies to a repository.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'a> {
    /// No entry matches: no AWS.
    Unlisted,
    /// Equally specific entries match: no AWS until the operator fixes it.
    Ambiguous(Vec<&'a str>),
    Entry {
        pattern: &'a str,
        entry: &'a Entry,
    },
}

const WILDCARDS: &[char] = &['*', '?', '[', ']', '{', '}', '!'];

impl Policy {
    /// Parse the file's text. A problem names the key, in one line.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let de = serde_norway::Deserializer::from_str(text);
        let file: File = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = inner.replace('\n', " ");
            if path == "." || path.is_empty() {
                inner
            } else {
                format!("`{path}`: {inner}")
            }
        })?;
        let mut rules = Vec::new();
        let mut seen = BTreeMap::new();
        for (pattern, entry) in file.repositories {
            let at = |what: String| format!("`repositories.\"{pattern}\"`: {what}");
            let folded = pattern.to_lowercase();
            if let Some(other) = seen.insert(folded, pattern.clone()) {
                return Err(at(format!(
                    "the same pattern as `{other}` (names are compared ignoring case)"
                )));
            }
            if pattern.matches('/').count() != 1
                || pattern.starts_with('/')
                || pattern.ends_with('/')
            {
                return Err(at(
                    "is not `owner/name` (a glob like `octo-org/*` is fine)".into()
                ));
            }
            let matcher = GlobBuilder::new(&pattern)
                .case_insensitive(true)
                .literal_separator(true)
                .build()
                .map_err(|e| at(format!("is not a glob ({e})")))?
                .compile_matcher();
            if let Some(aws) = &entry.aws {
                if aws.regions.is_empty() {
                    return Err(at("`aws.regions`: name at least one region".into()));
                }
                for glob in &aws.buckets {
                    Glob::new(glob)
                        .map_err(|e| at(format!("`aws.buckets`: `{glob}` is not a glob ({e})")))?;
                }
                aws.floor().check().map_err(|e| at(format!("`aws`: {e}")))?;
            }
            rules.push(Rule {
                exact: !pattern.contains(WILDCARDS),
                literal: pattern.chars().filter(|c| !WILDCARDS.contains(c)).count(),
                pattern,
                matcher,
                entry,
            });
        }
        Ok(Policy { rules })
    }

    /// Read and parse the file at `path`.
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        Policy::parse(&text)
    }

    /// Bucket globs of other entries that lie inside `entry`'s (read as
    /// text, as a repository's own globs are): narrower claims on buckets
    /// the broader entry would otherwise share.
    fn claimed_inside(&self, pattern: &str, own: &[String]) -> Vec<String> {
        let own: Vec<GlobMatcher> = own
            .iter()
            .filter_map(|g| Glob::new(g).ok())
            .map(|g| g.compile_matcher())
            .collect();
        let mut claimed: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.pattern != pattern)
            .filter_map(|r| r.entry.aws.as_ref())
            .flat_map(|a| a.buckets.iter())
            .filter(|g| !own.iter().any(|o| o.glob().glob() == g.as_str()))
            .filter(|g| own.iter().any(|o| o.is_match(g.as_str())))
            .cloned()
            .collect();
        claimed.sort();
        claimed.dedup();
        claimed
    }

    /// How many entries the file has.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The entry for `repo` (`owner/name`): an exact name first, then the
    /// glob with the most literal characters; a tie is no entry.
    pub fn lookup(&self, repo: &str) -> Match<'_> {
        let mut best: Vec<&Rule> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matcher.is_match(repo)) {
            let key = |r: &Rule| (r.exact, r.literal);
            match best.first() {
                Some(b) if key(b) > key(rule) => {}
                Some(b) if key(b) == key(rule) => best.push(rule),
                _ => best = vec![rule],
            }
        }
        match best.as_slice() {
            [] => Match::Unlisted,
            [one] => Match::Entry {
                pattern: &one.pattern,
                entry: &one.entry,
            },
            many => Match::Ambiguous(many.iter().map(|r| r.pattern.as_str()).collect()),
        }
    }
}

/// `repo`'s AWS scope as it may be used: its own, checked against the tag
/// rule and bounded by the policy (when there is one), with what was asked
/// beyond that said as a problem. `None` is no AWS.
pub fn bound(
    repo: &str,
    scope: Option<&AwsScope>,
    policy: Option<&Policy>,
) -> (Option<AwsScope>, Option<ConfigProblem>) {
    let Some(scope) = scope else {
        return (None, None);
    };
    if let Some(problem) = foreign_tag(repo, scope) {
        return (None, Some(problem));
    }
    let Some(policy) = policy else {
        return (Some(scope.clone()), None);
    };
    let (pattern, ceiling) = match ceiling_for(repo, scope, policy) {
        Ok(found) => found,
        Err(problem) => return (None, Some(problem)),
    };
    within_ceiling(scope, policy, pattern, ceiling)
}

/// The problem with a `required_tag` whose value is not `repo` itself, if
/// it names one.
fn foreign_tag(repo: &str, scope: &AwsScope) -> Option<ConfigProblem> {
    let (key, value) = scope.tag()?;
    if value.eq_ignore_ascii_case(repo) {
        return None;
    }
    let what = format!(
        "sets `aws.required_tag` to `{key}={value}`, but the tag's value must be this repository's own name (`{key}={repo}`), so that no repository can claim another's resources"
    );
    Some(problem(what, Instead::NoAws))
}

/// The policy's entry for `repo` and its ceiling, or why the repository
/// gets no AWS: no entry, a tie, an entry without `aws`, or a missing tag
/// the ceiling requires.
fn ceiling_for<'p>(
    repo: &str,
    scope: &AwsScope,
    policy: &'p Policy,
) -> Result<(&'p str, &'p AwsCeiling), ConfigProblem> {
    let (pattern, ceiling) = match policy.lookup(repo) {
        Match::Unlisted => {
            let what = "has an `aws` section, but this server's policy file gives this repository no AWS scope".to_string();
            return Err(problem(what, Instead::NoAws));
        }
        Match::Ambiguous(patterns) => {
            tracing::error!(
                repo,
                entries = ?patterns,
                "AGENTIC_POLICY_FILE: equally specific entries match this repository; it gets no AWS until one is made more specific"
            );
            let what = "has an `aws` section, but this server's policy file has equally specific entries for this repository (the operator must fix the file)".to_string();
            return Err(problem(what, Instead::NoAws));
        }
        Match::Entry { pattern, entry } => match &entry.aws {
            None => {
                let what = format!(
                    "has an `aws` section, but this server's policy file (entry `{pattern}`) allows this repository no AWS"
                );
                return Err(problem(what, Instead::NoAws));
            }
            Some(ceiling) => (pattern, ceiling),
        },
    };
    if ceiling.require_tag && scope.tag().is_none() {
        let what = format!(
            "names no `aws.required_tag`, which this server's ceiling (`{pattern}`) requires (`required_tag: agentic:repo={repo}`, say): without it every resource in its regions would be in scope"
        );
        return Err(problem(what, Instead::NoAws));
    }
    Ok((pattern, ceiling))
}

/// `scope` cut down to `ceiling` (the policy's entry `pattern`), with its
/// floors raised and its bounds set; what was cut is said as a problem.
fn within_ceiling(
    scope: &AwsScope,
    policy: &Policy,
    pattern: &str,
    ceiling: &AwsCeiling,
) -> (Option<AwsScope>, Option<ConfigProblem>) {
    let mut bounded = scope.clone();
    let mut beyond: Vec<String> = Vec::new();
    let claimed = policy.claimed_inside(pattern, &ceiling.buckets);
    cut_to_ceiling(&mut bounded, ceiling, &claimed, &mut beyond);
    let account_outside = match &scope.account {
        Some(a) if !ceiling.accounts.is_empty() && !ceiling.accounts.contains(a) => {
            beyond.push(format!("account `{a}`"));
            true
        }
        _ => false,
    };
    bounded.approvals = raised_approvals(scope.approvals, ceiling.floor(), &mut beyond);
    bounded.bounds = Some(Bounds {
        pattern: pattern.to_string(),
        accounts: ceiling.accounts.clone(),
        buckets: ceiling.buckets.clone(),
        claimed,
        max_tier: ceiling.max_tier,
        iam: ceiling.iam,
    });
    let said = |instead| {
        (!beyond.is_empty()).then(|| {
            problem(
                format!(
                    "asks for more than this server's ceiling (`{pattern}`) allows: {}",
                    beyond.join(", ")
                ),
                instead,
            )
        })
    };
    if bounded.regions.is_empty() || account_outside {
        return (None, said(Instead::NoAws));
    }
    (Some(bounded), said(Instead::Ceiling))
}

/// Drop from `bounded` the regions, bucket globs, instance types, images
/// and attachable policies outside `ceiling` (or inside what other entries
/// `claimed`), and cap its instances; each cut is added to `beyond`.
fn cut_to_ceiling(
    bounded: &mut AwsScope,
    ceiling: &AwsCeiling,
    claimed: &[String],
    beyond: &mut Vec<String>,
) {
    bounded.regions.retain(|r| {
        let inside = ceiling.regions.contains(r);
        if !inside {
            beyond.push(format!("region `{r}`"));
        }
        inside
    });
    let matches = |globs: &[String], text: &str| {
        globs
            .iter()
            .filter_map(|c| Glob::new(c).ok())
            .any(|c| c.compile_matcher().is_match(text))
    };
    bounded.buckets.retain(|b| {
        // A repository's glob must lie inside one of the ceiling's and
        // outside what other entries claim: read as text, it matches a
        // ceiling glob and no claimed one (and every bucket is checked
        // against all three lists anyway).
        let inside = matches(&ceiling.buckets, b) && !matches(claimed, b);
        if !inside {
            beyond.push(format!("bucket glob `{b}`"));
        }
        inside
    });
    let mut within = |what: &str, asked: &mut Vec<String>, allowed: Option<&Vec<String>>| {
        if let Some(allowed) = allowed {
            asked.retain(|x| {
                let inside = allowed.contains(x);
                if !inside {
                    beyond.push(format!("{what} `{x}`"));
                }
                inside
            });
        }
    };
    within(
        "instance type",
        &mut bounded.instance_types,
        ceiling.instance_types.as_ref(),
    );
    within("image", &mut bounded.amis, ceiling.amis.as_ref());
    within(
        "attachable policy",
        &mut bounded.attachable_policies,
        Some(&ceiling.attachable_policies),
    );
    if let Some(most) = ceiling.max_instances.filter(|m| bounded.max_instances > *m) {
        beyond.push(format!(
            "`max_instances: {}` (at most {most})",
            bounded.max_instances
        ));
        bounded.max_instances = most;
    }
}

/// The approval rules `asked`, raised to the ceiling's `floor`; asking for
/// looser ones (rather than leaving them unset) is added to `beyond`.
fn raised_approvals(
    asked: ApprovalRules,
    floor: ApprovalRules,
    beyond: &mut Vec<String>,
) -> ApprovalRules {
    if asked != ApprovalRules::default()
        && (asked.destructive_approvals < floor.destructive_approvals
            || asked.destructive_role < floor.destructive_role
            || (floor.write_needs_second_person && !asked.write_needs_second_person))
    {
        beyond.push("looser `aws.approvals`".into());
    }
    ApprovalRules {
        write_needs_second_person: asked.write_needs_second_person
            || floor.write_needs_second_person,
        destructive_approvals: asked.destructive_approvals.max(floor.destructive_approvals),
        destructive_role: asked.destructive_role.max(floor.destructive_role),
    }
}

fn problem(what: String, instead: Instead) -> ConfigProblem {
    ConfigProblem { what, instead }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo_config::RepoConfig;

    fn scope(yaml: &str) -> AwsScope {
        RepoConfig::parse(yaml).unwrap().aws.unwrap()
    }

    const FILE: &str = r#"
repositories:
  "octo-org/*":
    aws:
      accounts: ["123456789012"]
      regions: [us-east-1, eu-west-1]
      buckets: ["octo-*"]
      max_tier: write
      destructive_approvals: 2
  "octo-org/infra":
    aws:
      regions: [us-east-1]
  "octo-org/sandbox": {}
  "*/web":
    aws:
      regions: [us-west-2]
"#;

    #[test]
    fn the_most_specific_entry_wins_and_names_ignore_case() {
        let p = Policy::parse(FILE).unwrap();
        let pattern = |repo: &str| match p.lookup(repo) {
            Match::Entry { pattern, .. } => pattern.to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(pattern("octo-org/infra"), "octo-org/infra");
        assert_eq!(pattern("Octo-Org/INFRA"), "octo-org/infra");
        assert_eq!(pattern("octo-org/app"), "octo-org/*");
        assert_eq!(
            pattern("octo-org/web"),
            "octo-org/*",
            "9 literal characters beat 4"
        );
        assert_eq!(pattern("octo-team/web"), "*/web");
        assert_eq!(p.lookup("other/app"), Match::Unlisted);
        // `*` stops at the slash.
        let any = Policy::parse("repositories:\n  \"*\": {}\n").unwrap_err();
        assert!(any.contains("is not `owner/name`"), "{any}");
        let tie = Policy::parse(
            "repositories:\n  \"octo/a*\":\n    aws: {regions: [us-east-1]}\n  \"octo/*b\":\n    aws: {regions: [us-east-1]}\n",
        )
        .unwrap();
        assert_eq!(
            tie.lookup("octo/ab"),
            Match::Ambiguous(vec!["octo/*b", "octo/a*"])
        );
        assert!(matches!(
            tie.lookup("octo/ax"),
            Match::Entry {
                pattern: "octo/a*",
                ..
            }
        ));
    }

    #[test]
    fn a_broader_entry_cannot_reach_buckets_or_launches_a_narrower_one_claims() {
        let p = Policy::parse(
            "repositories:\n  \"octo-org/*\":\n    aws:\n      regions: [us-east-1]\n      buckets: ['octo-*']\n      instance_types: [t3.micro]\n      max_instances: 2\n      iam: false\n  \"octo-org/infra\":\n    aws:\n      regions: [us-east-1]\n      buckets: ['octo-infra-*']\n      attachable_policies: ['arn:aws:iam::aws:policy/AdministratorAccess']\n",
        )
        .unwrap();
        let asks = |repo: &str| {
            scope(&format!(
                "aws:\n  regions: [us-east-1]\n  required_tag: t={repo}\n  buckets: ['octo-infra-*', 'octo-app-*']\n  instance_types: [t3.micro, p5.48xlarge]\n  max_instances: 100\n  attachable_policies: ['arn:aws:iam::aws:policy/AdministratorAccess']\n"
            ))
        };
        let (s, problem) = bound("octo-org/app", Some(&asks("octo-org/app")), Some(&p));
        let s = s.unwrap();
        assert_eq!(s.buckets, ["octo-app-*"]);
        assert_eq!(s.instance_types, ["t3.micro"]);
        assert_eq!(s.max_instances, 2);
        assert!(s.attachable_policies.is_empty());
        let problem = problem.unwrap().to_string();
        for cut in [
            "bucket glob `octo-infra-*`",
            "instance type `p5.48xlarge`",
            "`max_instances: 100` (at most 2)",
            "attachable policy `arn:aws:iam::aws:policy/AdministratorAccess`",
        ] {
            assert!(problem.contains(cut), "{cut}: {problem}");
        }
        // The narrower claim holds for a bucket name too, and IAM is off.
        assert!(crate::aws::scope::bucket(&s, "octo-infra-state").is_err());
        assert!(crate::aws::scope::bucket(&s, "octo-app-logs").is_ok());
        assert!(crate::aws::scope::iam(&s).is_err());
        // The narrower entry keeps its own.
        let (s, _) = bound("octo-org/infra", Some(&asks("octo-org/infra")), Some(&p));
        let s = s.unwrap();
        assert_eq!(s.buckets, ["octo-infra-*"]);
        assert_eq!(s.attachable_policies.len(), 1);
        assert!(crate::aws::scope::iam(&s).is_ok());
    }

    #[test]
    fn the_example_file_parses() {
        let p = Policy::parse(include_str!("../docs/policy.example.yml")).unwrap();
        assert!(matches!(
            p.lookup("octo-org/infra"),
            Match::Entry {
                pattern: "octo-org/infra",
                ..
            }
        ));
    }

    #[test]
    fn a_bad_file_is_one_line_naming_the_key() {
        for (text, wanted) in [
            (
                "repositories:\n  \"a/*\":\n    aws:\n      regions: [x]\n      max_tier: admin\n",
                "`repositories.a/*.aws.max_tier`",
            ),
            (
                "repositories:\n  \"a/*\":\n    aws:\n      regions: []\n",
                "`aws.regions`: name at least one region",
            ),
            (
                "repositories:\n  \"a/*\":\n    aws:\n      regions: [x]\n      destructive_approvals: 0\n",
                "may not be below 1",
            ),
            ("repositories:\n  \"a/*\":\n    aws:\n      regions: [x]\n      region: y\n", "unknown field `region`"),
            ("repos: {}\n", "unknown field `repos`"),
            ("repositories:\n  \"A/x\": {}\n  \"a/X\": {}\n", "the same pattern as"),
        ] {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.contains(wanted), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_tag_must_name_the_repository_itself_with_or_without_a_policy() {
        let own =
            scope("aws:\n  regions: [us-east-1]\n  required_tag: agentic:repo=Octo-Org/Infra\n");
        let (s, p) = bound("octo-org/infra", Some(&own), None);
        assert!(s.is_some() && p.is_none());
        let other =
            scope("aws:\n  regions: [us-east-1]\n  required_tag: agentic:repo=octo-org/payments\n");
        let (s, p) = bound("octo-org/infra", Some(&other), None);
        assert!(s.is_none());
        let p = p.unwrap().to_string();
        assert!(
            p.contains("must be this repository's own name (`agentic:repo=octo-org/infra`)"),
            "{p}"
        );
        assert!(p.contains("no AWS tool runs for this repository"), "{p}");
    }

    #[test]
    fn a_repository_gets_the_intersection_and_is_told_what_was_cut() {
        let p = Policy::parse(FILE).unwrap();
        let wide = scope(
            "aws:\n  regions: [us-east-1, ap-south-1]\n  required_tag: t=octo-org/app\n  buckets: ['octo-logs-*', 'payments-*']\n  approvals:\n    destructive_approvals: 1\n    destructive_role: admin\n",
        );
        let (s, problem) = bound("octo-org/app", Some(&wide), Some(&p));
        let s = s.unwrap();
        assert_eq!(s.regions, ["us-east-1"]);
        assert_eq!(s.buckets, ["octo-logs-*"]);
        assert_eq!(s.approvals.destructive_approvals, 2, "the floor");
        assert_eq!(
            s.approvals.destructive_role,
            Role::Admin,
            "raised by the repository"
        );
        let bounds = s.bounds.unwrap();
        assert_eq!(bounds.max_tier, RiskTier::Write);
        assert_eq!(bounds.accounts, ["123456789012"]);
        let problem = problem.unwrap().to_string();
        assert!(
            problem.contains("asks for more than this server's ceiling (`octo-org/*`) allows: region `ap-south-1`, bucket glob `payments-*`"),
            "{problem}"
        );
        assert!(problem.contains("the ceiling applies"), "{problem}");
        // A floor the repository did not write is raised silently.
        let floors = Policy::parse(&FILE.replace(
            "destructive_approvals: 2",
            "destructive_approvals: 2\n      write_needs_second_person: true",
        ))
        .unwrap();
        let quiet = scope("aws:\n  regions: [us-east-1]\n  required_tag: t=octo-org/app\n");
        let (s, problem) = bound("octo-org/app", Some(&quiet), Some(&floors));
        let rules = s.unwrap().approvals;
        assert!(rules.write_needs_second_person && rules.destructive_approvals == 2);
        assert_eq!(problem, None);
        // Within the ceiling: nothing to say.
        let narrow = scope("aws:\n  regions: [eu-west-1]\n  required_tag: t=octo-org/app\n");
        let (s, problem) = bound("octo-org/app", Some(&narrow), Some(&p));
        assert!(s.is_some() && problem.is_none(), "{problem:?}");
        // No tag: no AWS, unless the entry says a tag is not required.
        let untagged = scope("aws:\n  regions: [eu-west-1]\n");
        let (s, problem) = bound("octo-org/app", Some(&untagged), Some(&p));
        assert!(s.is_none());
        let problem = problem.unwrap().to_string();
        assert!(
            problem.contains(
                "names no `aws.required_tag`, which this server's ceiling (`octo-org/*`) requires"
            ),
            "{problem}"
        );
        let lax = Policy::parse("repositories:\n  \"octo-org/*\":\n    aws:\n      regions: [eu-west-1]\n      require_tag: false\n").unwrap();
        let (s, problem) = bound("octo-org/app", Some(&untagged), Some(&lax));
        assert!(s.is_some() && problem.is_none(), "{problem:?}");
    }

    #[test]
    fn nothing_left_or_no_entry_is_no_aws() {
        let p = Policy::parse(FILE).unwrap();
        for repo in ["octo-org/app", "other/app", "octo-org/sandbox"] {
            let asia = scope(&format!(
                "aws:\n  regions: [ap-south-1]\n  required_tag: t={repo}\n"
            ));
            let (s, problem) = bound(repo, Some(&asia), Some(&p));
            assert!(s.is_none(), "{repo}");
            assert!(
                problem.unwrap().to_string().contains("no AWS tool runs"),
                "{repo}"
            );
        }
        let elsewhere = scope(
            "aws:\n  regions: [us-east-1]\n  account: '999999999999'\n  required_tag: t=octo-org/app\n",
        );
        let (s, problem) = bound("octo-org/app", Some(&elsewhere), Some(&p));
        assert!(s.is_none());
        assert!(problem
            .unwrap()
            .to_string()
            .contains("account `999999999999`"));
        // No `aws` section: nothing to bound, nothing to say.
        assert_eq!(bound("other/app", None, Some(&p)), (None, None));
    }
}
