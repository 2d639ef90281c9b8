//! How wide an ingress rule opens a security group, read strictly: a CIDR
//! block is accepted only as it would be printed back (`10.0.0.0/8`, never
//! `010.0.0.0/8`, `10.0.0.0/08` or `10.1.2.3/8`), so that what people
//! approve, what we measure and what AWS applies are one range.
//!
//! A step's tier follows the number of addresses it opens, not how the
//! block is written. A group that a plan opens to [`WIDE_V4`] IPv4 or
//! [`WIDE_V6`] IPv6 addresses or more — by one rule (a `/16` or a `/48` and
//! wider) or by several together, counted as their union — gets every
//! ingress step of the plan on that group made `destructive`. The union is
//! computed over the whole plan each time a step is recorded
//! ([`raise_wide_unions`]) and tiers only ever rise, so the result depends
//! on the plan's steps and not on their order: two `/1` halves are
//! destructive whichever comes first.
//!
//! Rules already on the group in AWS are not counted: a plan is judged by
//! what it adds. A group that already admits a wide range is the state the
//! read tools show; counting it would make every later narrow rule on that
//! group destructive without making it any safer.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::action::{AwsAction, PlanStep};
use crate::domain::RiskTier;

/// IPv4 addresses that make a group's opening destructive: a `/16`, the
/// size past which "our office" or "the VPN" no longer describes a range.
pub const WIDE_V4: u128 = 1 << 16;

/// IPv6 addresses that make a group's opening destructive: a `/48`, one
/// site's whole allocation.
pub const WIDE_V6: u128 = 1 << 80;

/// The EC2 action of an ingress step.
pub const ACTION: &str = "AuthorizeSecurityGroupIngress";

/// Read a CIDR block strictly: canonical form only, no host bits set. The
/// refusal says what was wrong and what to write instead.
pub fn parse(cidr: &str) -> Result<IpNet, String> {
    let net: IpNet = cidr.parse().map_err(|_| {
        format!(
            "refused: `{cidr}` is not a CIDR block (an address and a prefix length, written like `10.0.0.0/16` or `2001:db8::/48`)"
        )
    })?;
    if net.trunc() != net {
        let one = IpNet::new(net.addr(), net.max_prefix_len()).unwrap_or(net);
        return Err(format!(
            "refused: `{cidr}` has host bits set: it means `{}`; write that, or `{one}` for the one address",
            net.trunc()
        ));
    }
    if net.to_string() != cidr {
        return Err(format!(
            "refused: `{cidr}` is not written canonically: write `{net}`"
        ));
    }
    Ok(net)
}

/// How many addresses `net` holds, saturating (an IPv6 `/0` is 2^128).
fn size(net: &IpNet) -> u128 {
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    2u128.saturating_pow(bits)
}

/// The number of distinct addresses the blocks cover together.
fn union_size(nets: &[IpNet]) -> u128 {
    IpNet::aggregate(&nets.to_vec())
        .iter()
        .map(size)
        .fold(0, u128::saturating_add)
}

/// The blocks are wide enough, together, to make their steps destructive:
/// IPv4 and IPv6 are counted each on its own.
pub fn wide(nets: &[IpNet]) -> bool {
    let v4: Vec<IpNet> = nets
        .iter()
        .filter(|n| matches!(n, IpNet::V4(_)))
        .copied()
        .collect();
    let v6: Vec<IpNet> = nets
        .iter()
        .filter(|n| matches!(n, IpNet::V6(_)))
        .copied()
        .collect();
    union_size(&v4) >= WIDE_V4 || union_size(&v6) >= WIDE_V6
}

/// The block the step opens, if it is an ingress step with a readable
/// one (every recorded step was read by [`parse`]).
fn block(step: &PlanStep) -> Option<IpNet> {
    if step.action != AwsAction::AuthorizeSecurityGroupIngress {
        return None;
    }
    step.arguments["cidr"].as_str()?.parse().ok()
}

/// A group's ingress of one address family: its region, its id, IPv6.
type Opening = (Option<String>, String, bool);

/// Make every ingress step on a group destructive when the plan's steps
/// on that group, of the same address family, together open it wide
/// ([`wide`]); a narrow IPv4 rule is not raised by a wide IPv6 one beside
/// it. Returns the numbers (from 1) of the steps it raised, so the model
/// can be told.
pub fn raise_wide_unions(steps: &mut [PlanStep]) -> Vec<usize> {
    let mut by_group: BTreeMap<Opening, Vec<(usize, IpNet)>> = BTreeMap::new();
    for (i, step) in steps.iter().enumerate() {
        if let Some(net) = block(step) {
            let v6 = matches!(net, IpNet::V6(_));
            by_group
                .entry((step.region.clone(), step.resource.clone(), v6))
                .or_default()
                .push((i, net));
        }
    }
    let mut raised = Vec::new();
    for rules in by_group.values() {
        let nets: Vec<IpNet> = rules.iter().map(|(_, n)| *n).collect();
        if !wide(&nets) {
            continue;
        }
        for (i, _) in rules {
            if steps[*i].risk < RiskTier::Destructive {
                steps[*i].risk = RiskTier::Destructive;
                raised.push(i + 1);
            }
        }
    }
    raised.sort_unstable();
    raised
}

/// The whole internet: `0.0.0.0/0` or `::/0`.
pub fn everywhere(net: &IpNet) -> bool {
    net.prefix_len() == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(group: &str, cidr: &str, risk: RiskTier) -> PlanStep {
        PlanStep {
            service: "ec2".into(),
            action: AwsAction::AuthorizeSecurityGroupIngress,
            region: Some("eu-west-1".into()),
            resource: group.into(),
            arguments: json!({ "group_id": group, "protocol": "tcp", "from_port": 443,
                               "to_port": 443, "cidr": cidr }),
            risk,
        }
    }

    #[test]
    fn only_the_canonical_spelling_of_a_block_is_read() {
        assert_eq!(parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse("::/0").unwrap().to_string(), "::/0");
        assert_eq!(parse("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        for (cidr, why) in [
            ("0.0.0.0/00", "not written canonically: write `0.0.0.0/0`"),
            ("::/00", "not written canonically: write `::/0`"),
            ("10.0.0.0/08", "not written canonically: write `10.0.0.0/8`"),
            ("010.0.0.0/8", "not written canonically: write `10.0.0.0/8`"),
            (
                "2001:DB8::/32",
                "not written canonically: write `2001:db8::/32`",
            ),
            (
                "2001:0db8::/32",
                "not written canonically: write `2001:db8::/32`",
            ),
            ("0.0.0.0/+0", "not a CIDR block"),
            ("0.0.0.0/-0", "not a CIDR block"),
            ("0.0.0.0", "not a CIDR block"),
            ("10.0.0.0/33", "not a CIDR block"),
            (" 10.0.0.0/8", "not a CIDR block"),
            ("10.0.0.0/8 ", "not a CIDR block"),
            ("0x0a.0.0.0/8", "not a CIDR block"),
            ("everywhere", "not a CIDR block"),
            (
                "10.1.2.3/8",
                "has host bits set: it means `10.0.0.0/8`; write that, or `10.1.2.3/32`",
            ),
            (
                "2001:db8::1/32",
                "has host bits set: it means `2001:db8::/32`",
            ),
            ("1.2.3.4/0", "has host bits set: it means `0.0.0.0/0`"),
        ] {
            let refusal = parse(cidr).unwrap_err();
            assert!(refusal.starts_with("refused: "), "{cidr}: {refusal}");
            assert!(refusal.contains(why), "{cidr}: {refusal}");
        }
    }

    #[test]
    fn a_block_is_wide_by_its_size_and_blocks_by_their_union() {
        let nets =
            |list: &[&str]| -> Vec<IpNet> { list.iter().map(|c| parse(c).unwrap()).collect() };
        assert!(wide(&nets(&["0.0.0.0/0"])));
        assert!(wide(&nets(&["10.0.0.0/8"])));
        assert!(wide(&nets(&["10.0.0.0/16"])));
        assert!(!wide(&nets(&["10.0.0.0/17"])));
        assert!(wide(&nets(&["0.0.0.0/1", "128.0.0.0/1"])));
        assert!(wide(&nets(&["10.0.0.0/17", "10.0.128.0/17"])));
        // Disjoint halves count as much as adjacent ones.
        assert!(wide(&nets(&["10.0.0.0/17", "192.168.0.0/17"])));
        // Overlaps count once.
        assert!(!wide(&nets(&[
            "10.0.0.0/17",
            "10.0.0.0/18",
            "10.0.64.0/18"
        ])));
        let many: Vec<String> = (0..256).map(|i| format!("10.{i}.0.0/24")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(wide(&nets(&many)));
        assert!(!wide(&nets(&many[..255])));
        assert!(wide(&nets(&["::/0"])));
        assert!(wide(&nets(&["2001:db8::/48"])));
        assert!(!wide(&nets(&["2001:db8::/49"])));
        assert!(wide(&nets(&["2001:db8::/49", "2001:db8:0:8000::/49"])));
        // The families are counted each on its own.
        assert!(!wide(&nets(&["10.0.0.0/17", "2001:db8::/49"])));
    }

    #[test]
    fn steps_on_one_group_are_raised_together_whatever_their_order() {
        let halves = [
            step("sg-1", "0.0.0.0/1", RiskTier::Destructive),
            step("sg-1", "10.0.0.0/24", RiskTier::Write),
            step("sg-2", "10.0.0.0/17", RiskTier::Write),
            step("sg-1", "128.0.0.0/1", RiskTier::Destructive),
            step("sg-2", "10.0.128.0/17", RiskTier::Write),
            step("sg-3", "10.0.0.0/17", RiskTier::Write),
        ];
        for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [4, 0, 5, 2, 3, 1]] {
            let mut steps: Vec<PlanStep> = order.iter().map(|&i| halves[i].clone()).collect();
            raise_wide_unions(&mut steps);
            for s in &steps {
                let expected = if s.resource == "sg-3" {
                    RiskTier::Write
                } else {
                    RiskTier::Destructive
                };
                assert_eq!(s.risk, expected, "{order:?}: {s:?}");
            }
        }
        // Recorded one at a time, as a conversation does: the step that
        // completes the union raises the earlier one too.
        let mut steps = vec![step("sg-2", "10.0.0.0/17", RiskTier::Write)];
        assert_eq!(raise_wide_unions(&mut steps), Vec::<usize>::new());
        steps.push(step("sg-2", "10.0.128.0/17", RiskTier::Write));
        assert_eq!(raise_wide_unions(&mut steps), [1, 2]);
        assert_eq!(raise_wide_unions(&mut steps), Vec::<usize>::new());
        // A wide IPv6 rule does not raise a narrow IPv4 one on the group.
        let mut mixed = vec![
            step("sg-5", "10.0.0.0/17", RiskTier::Write),
            step("sg-5", "2001:db8::/47", RiskTier::Destructive),
        ];
        assert!(raise_wide_unions(&mut mixed).is_empty());
        assert_eq!(mixed[0].risk, RiskTier::Write);
        // Another region's group of the same id is another group.
        let mut apart = vec![
            step("sg-4", "10.0.0.0/17", RiskTier::Write),
            PlanStep {
                region: Some("us-west-2".into()),
                ..step("sg-4", "10.0.128.0/17", RiskTier::Write)
            },
        ];
        assert!(raise_wide_unions(&mut apart).is_empty());
    }
}
