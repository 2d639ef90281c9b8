//! `agentic aws …`: the read tools from the command line, with the SDK's
//! standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credential
//! chain). Each prints a table, or JSON with `--json`.

use clap::Subcommand;
use serde::Serialize;

use super::action::AwsAction;
use super::read::{self, Holder, InstanceFilter};
use super::Aws;
use crate::domain::RiskTier;

#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// EC2: instances and security groups.
    Ec2 {
        #[command(subcommand)]
        command: Ec2Command,
    },
    /// S3: buckets, their policies and public-access blocks.
    S3 {
        #[command(subcommand)]
        command: S3Command,
    },
    /// IAM: users, roles, attached policies, and a least-privilege check.
    Iam {
        #[command(subcommand)]
        command: IamCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum Ec2Command {
    /// List instances.
    List {
        /// Only instances with this tag, `key=value` (repeatable).
        #[arg(long, value_parser = parse_tag)]
        tag: Vec<(String, String)>,
        /// Only instances in this state (running, stopped, …).
        #[arg(long)]
        state: Option<String>,
        /// Another region than AWS_REGION.
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Describe instances by id.
    Describe {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Start instances (write).
    Start(Change),
    /// Stop instances (write).
    Stop(Change),
    /// Reboot instances (write).
    Reboot(Change),
    /// Terminate instances (destructive).
    Terminate(Change),
    /// List the images (AMIs) this account owns.
    Images {
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List security groups, with the ingress rules open to the internet.
    SecurityGroups {
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// A change to instances from the command line: the same scope checks as
/// the bot's, against the repository settings in `--config`, with live
/// state read from AWS, DryRun first, and a confirmation unless `--yes`.
#[derive(Debug, clap::Args)]
pub struct Change {
    #[arg(required = true)]
    ids: Vec<String>,
    /// Another region than AWS_REGION.
    #[arg(long)]
    region: Option<String>,
    /// The repository settings whose `aws` section is the scope.
    #[arg(long, default_value = ".github/agentic.yml")]
    config: String,
    /// Do it without asking.
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum S3Command {
    /// List buckets.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// List a bucket's objects (at most 1,000).
    Objects {
        bucket: String,
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print a bucket's policy.
    Policy { bucket: String },
    /// Show a bucket's default encryption.
    Encryption { bucket: String },
    /// Show a bucket's versioning status.
    Versioning { bucket: String },
    /// Show a bucket's public-access block.
    PublicAccess {
        bucket: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum IamCommand {
    /// List IAM users (name and ARN)
    Users {
        #[arg(long)]
        json: bool,
    },
    /// List IAM roles (name and ARN)
    Roles {
        #[arg(long)]
        json: bool,
    },
    /// The managed policies attached to a user or a role.
    Policies {
        #[arg(long, conflicts_with = "role", required_unless_present = "role")]
        user: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// A user's access keys (ids, status, creation; never secrets).
    AccessKeys {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Check a policy document (a file, or - for stdin) for grants wider
    /// than they need be. Exits 1 when it finds something.
    CheckPolicy {
        file: String,
        #[arg(long)]
        json: bool,
    },
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not `key=value`")),
    }
}

/// Print `rows` as JSON or as lines made by `line`.
fn print<T: Serialize>(rows: &[T], json: bool, empty: &str, line: impl Fn(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into())
        );
    } else if rows.is_empty() {
        println!("{empty}");
    } else {
        for r in rows {
            println!("{}", line(r));
        }
    }
}

fn instance_line(i: &read::Instance) -> String {
    let tags: Vec<String> = i.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}  {}  {}  {}  {}",
        i.id,
        i.state,
        i.instance_type,
        i.availability_zone,
        tags.join(",")
    )
}

fn principal_line(p: &read::Principal) -> String {
    format!("{}  {}", p.name, p.arn)
}

/// Run one `agentic aws …` command. `Ok(false)` when a check found
/// something (the exit status says so).
pub async fn run(command: AwsCommand) -> anyhow::Result<bool> {
    if let AwsCommand::Iam {
        command: IamCommand::CheckPolicy { file, json },
    } = &command
    {
        // Done on our side: no AWS call, no credentials needed.
        return check_policy(file, *json);
    }
    let aws = Aws::from_env().await;
    match command {
        AwsCommand::Ec2 { command } => ec2(&aws, command).await?,
        AwsCommand::S3 { command } => s3(&aws, command).await?,
        AwsCommand::Iam { command } => iam(&aws, command).await?,
    }
    Ok(true)
}

/// `agentic aws iam check-policy`: print the findings on the policy in
/// `file` (`-` for stdin); `Ok(false)` when there are any.
fn check_policy(file: &str, json: bool) -> anyhow::Result<bool> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read `{file}`: {e}"))?
    };
    let findings = super::policy::check(&text)
        .map_err(|e| anyhow::anyhow!("`{file}` is not an IAM policy document: {e}"))?;
    print(&findings, json, "no findings", |f| {
        let sid = f
            .sid
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        format!(
            "{}  statement {}{sid}: {}",
            f.severity.name(),
            f.statement,
            f.message
        )
    });
    Ok(findings.is_empty())
}

/// `agentic aws ec2 …`: list and describe instances, images and security
/// groups, or change instances.
async fn ec2(aws: &Aws, command: Ec2Command) -> anyhow::Result<()> {
    match command {
        Ec2Command::List {
            tag,
            state,
            region,
            json,
        } => {
            let filter = InstanceFilter {
                tags: tag,
                state,
                ids: vec![],
            };
            let rows = read::instances(aws, region.as_deref(), &filter).await?;
            print(&rows, json, "no instances", instance_line);
        }
        Ec2Command::Describe { ids, region, json } => {
            let filter = InstanceFilter {
                ids,
                ..InstanceFilter::default()
            };
            let rows = read::instances(aws, region.as_deref(), &filter).await?;
            print(&rows, json, "no instances", instance_line);
        }
        Ec2Command::Start(c) => change(aws, AwsAction::StartInstances, RiskTier::Write, c).await?,
        Ec2Command::Stop(c) => change(aws, AwsAction::StopInstances, RiskTier::Write, c).await?,
        Ec2Command::Reboot(c) => {
            change(aws, AwsAction::RebootInstances, RiskTier::Write, c).await?
        }
        Ec2Command::Terminate(c) => {
            change(aws, AwsAction::TerminateInstances, RiskTier::Destructive, c).await?
        }
        Ec2Command::Images { region, json } => {
            let rows = read::images(aws, region.as_deref()).await?;
            print(&rows, json, "no images", |i| {
                format!("{}  {}  {}", i.id, i.state, i.name)
            });
        }
        Ec2Command::SecurityGroups { region, json } => {
            let rows = read::security_groups(aws, region.as_deref()).await?;
            print(&rows, json, "no security groups", |g| {
                let open = if g.open_to_world.is_empty() {
                    "closed to the internet".to_string()
                } else {
                    format!("OPEN: {}", g.open_to_world.join("; "))
                };
                format!("{}  {}  {}  {open}", g.id, g.name, g.vpc_id)
            });
        }
    }
    Ok(())
}

/// `agentic aws s3 …`: list buckets and objects, and show a bucket's
/// policy, encryption, versioning and public-access block.
async fn s3(aws: &Aws, command: S3Command) -> anyhow::Result<()> {
    match command {
        S3Command::Ls { json } => {
            let rows = read::buckets(aws).await?;
            print(&rows, json, "no buckets", String::clone);
        }
        S3Command::Objects {
            bucket,
            prefix,
            json,
        } => {
            let (rows, more) = read::objects(aws, &bucket, prefix.as_deref()).await?;
            print(&rows, json, "no objects", |o| {
                format!("{}  {}", o.size, o.key)
            });
            if more && !json {
                println!(
                    "… more than {} objects; narrow with --prefix",
                    read::MAX_OBJECTS
                );
            }
        }
        S3Command::Policy { bucket } => match read::bucket_policy(aws, &bucket).await? {
            Some(policy) => println!("{policy}"),
            None => println!("`{bucket}` has no bucket policy"),
        },
        S3Command::Encryption { bucket } => match read::bucket_encryption(aws, &bucket).await? {
            Some(algorithm) => println!("`{bucket}` encrypts new objects with {algorithm}"),
            None => println!("`{bucket}` has no default encryption configured"),
        },
        S3Command::Versioning { bucket } => match read::bucket_versioning(aws, &bucket).await? {
            Some(status) => println!("`{bucket}` versioning: {status}"),
            None => println!("`{bucket}` versioning was never enabled"),
        },
        S3Command::PublicAccess { bucket, json } => {
            let block = read::public_access_block(aws, &bucket).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&block)?);
            } else {
                match block {
                    None => println!(
                        "`{bucket}` has no public-access block: its policy and ACLs alone decide"
                    ),
                    Some(b) if b.blocks_everything() => {
                        println!("`{bucket}` blocks all public access")
                    }
                    Some(b) => println!("`{bucket}` blocks public access only in part: {b:?}"),
                }
            }
        }
    }
    Ok(())
}

/// `agentic aws iam …`: list users, roles, attached policies and access
/// keys. `check-policy` needs no AWS: `run` does it first.
async fn iam(aws: &Aws, command: IamCommand) -> anyhow::Result<()> {
    match command {
        IamCommand::Users { json } => {
            print(&read::users(aws).await?, json, "no users", principal_line)
        }
        IamCommand::Roles { json } => {
            print(&read::roles(aws).await?, json, "no roles", principal_line)
        }
        IamCommand::Policies { user, role, json } => {
            let holder = match (user, role) {
                (Some(u), _) => Holder::User(u),
                (None, Some(r)) => Holder::Role(r),
                (None, None) => anyhow::bail!("--user or --role"),
            };
            let rows = read::attached_policies(aws, &holder).await?;
            print(&rows, json, "no attached policies", principal_line);
        }
        IamCommand::AccessKeys { user, json } => {
            let rows = read::access_keys(aws, &user).await?;
            print(&rows, json, "no access keys", |k| {
                format!("{}  {}  {}", k.id, k.status, k.created)
            });
        }
        IamCommand::CheckPolicy { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// Ask on the terminal; `false` for anything but yes, or with no terminal.
fn confirm(question: &str) -> bool {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Run one change to instances: every instance checked against the scope
/// first (all or none), confirmed unless `--yes`, then each tried with
/// DryRun and made, as an apply makes a plan step.
async fn change(aws: &Aws, action: AwsAction, risk: RiskTier, c: Change) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&c.config).map_err(|e| {
        anyhow::anyhow!(
            "cannot read `{}` (its `aws` section is the scope of changes): {e}",
            c.config
        )
    })?;
    let config = crate::repo_config::RepoConfig::parse(&text)
        .map_err(|e| anyhow::anyhow!("`{}` {e}", c.config))?;
    let scope = config.aws.ok_or_else(|| {
        anyhow::anyhow!("`{}` has no `aws` section: no change may be made", c.config)
    })?;
    let region = c
        .region
        .or_else(|| aws.region().map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("no region: set AWS_REGION or --region"))?;
    super::scope::check_account(aws, &scope)
        .await
        .map_err(|e| anyhow::anyhow!("refused: {e}"))?;
    let steps = super::tools::instance_steps(aws, &scope, &region, &c.ids, action, risk)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let what = format!("{action} ({}) of {}", risk.as_str(), c.ids.join(", "));
    if !c.yes && !confirm(&format!("{what} in {region}?")) {
        anyhow::bail!("not confirmed: nothing changed (answer y on a terminal, or pass --yes)");
    }
    for step in &steps {
        let result = super::apply::run_step(
            aws,
            &scope,
            step,
            &format!("agentic-cli-{}", uuid::Uuid::new_v4().simple()),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", step.resource))?;
        println!("{result}");
    }
    Ok(())
}
