"""UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS and .InsideAWS: the temporary
credentials of an instance role (the session is named after the instance, `assumed-role/ROLE/i-…`)
used from an address that is not the instance's.

An instance reaches AWS APIs from its own public address, an Elastic IP or a NAT gateway (all inside
AWS's published EC2 ranges) or privately through a VPC endpoint. So:

- a public address outside AWS's ranges -> OutsideAWS;
- an AWS address that is not the instance's -> InsideAWS: one the inventory ties to another of our
  instances (Medium, `remoteAccountDetails.affiliated`), one that people (IAM users, root, federated
  users) also call from, or one in another Region than the instance's known addresses (or, with none
  known yet, than the Region it calls for a regional service);
- anything else is learned as one of the instance's addresses (ctx.state), as are the addresses the
  SSM agent on the instance calls from.

Private addresses without a VPC endpoint only appear in anonymised logs; they count as outside AWS
when people call from the same address, and are otherwise ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ingest.awsranges import aws_ranges
from ingest.rules import CLOUDTRAIL, Case, Detection, RuleContext, Setting, rule
from ingest.rules._ct import by_caller, ct_detection, envelope, event, parse_ip, rows_of

OUTSIDE = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
INSIDE = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS"
INSTANCE_SESSION = r"assumed-role/[^/]+/(i-[0-9a-fA-F]{8,17})$"
AGENT_SOURCES = ["ssmmessages.amazonaws.com", "ec2messages.amazonaws.com"]
HUMAN_TYPES = ["IAMUser", "Root", "FederatedUser"]
# Services whose calls are logged in us-east-1 whatever the caller's Region.
GLOBAL_SERVICES = {"iam.amazonaws.com", "sts.amazonaws.com", "organizations.amazonaws.com", "route53.amazonaws.com",
                   "cloudfront.amazonaws.com", "support.amazonaws.com", "health.amazonaws.com",
                   "s3.amazonaws.com", "signin.amazonaws.com", "account.amazonaws.com"}
MAX_HOME = 16


def _session(name: str, ip: str, *, instance: str = "i-0abcdef1234567890", t: str = "2024-05-01T12:00:00Z",
             source: str = "ec2.amazonaws.com", region: str = "us-east-1", **kw: Any) -> dict[str, Any]:
    return event(name, source=source, ip=ip, ui_type="AssumedRole", role="MyAppRole", session=instance, t=t,
                 region=region, **kw)


AWS_USE1 = "3.225.16.109"   # EC2, us-east-1
AWS_USE1_B = "3.225.16.200"
AWS_USW2 = "52.42.146.205"  # EC2, us-west-2
OUTSIDE_IP = "45.33.32.156"


def _cases() -> list[Case]:
    ssm = "amazon-ssm-agent/3.2.0"
    return [
        Case("instance credentials used from outside AWS", envelope(_session("DescribeInstances", OUTSIDE_IP)),
             expect=(OUTSIDE,), expect_severity={OUTSIDE: 8.0}),
        Case("the instance calling from its own AWS address", envelope(
            _session("UpdateInstanceInformation", AWS_USE1, agent=ssm, source="ssm.amazonaws.com"),
            _session("DescribeInstances", AWS_USE1))),
        Case("a new address in the same Region (restart, NAT gateway)", envelope(
            _session("UpdateInstanceInformation", AWS_USE1, agent=ssm, source="ssm.amazonaws.com",
                     t="2024-05-01T10:00:00Z"),
            _session("DescribeInstances", AWS_USE1_B))),
        Case("credentials used from an EC2 address in another Region", envelope(
            _session("UpdateInstanceInformation", AWS_USE1, agent=ssm, source="ssm.amazonaws.com",
                     t="2024-05-01T10:00:00Z"),
            _session("GetCallerIdentity", AWS_USW2, source="sts.amazonaws.com")), expect=(INSIDE,),
             expect_severity={INSIDE: 8.0}),
        Case("no known address, and the call's Region is not the address's", envelope(
            _session("DescribeInstances", AWS_USW2, region="us-east-1")), expect=(INSIDE,)),
        Case("an AWS address an IAM user also calls from (attacker box on EC2)", envelope(
            event("SendCommand", source="ssm.amazonaws.com", ip=AWS_USE1_B, user="mallory", t="2024-05-01T11:59:00Z"),
            _session("GetCallerIdentity", AWS_USE1_B, source="sts.amazonaws.com")), expect=(INSIDE,)),
        Case("a private address (VPC workload)", envelope(_session("PutObject", "10.0.1.50", source="s3.amazonaws.com"))),
        Case("through a VPC endpoint", envelope(_session("GetObject", OUTSIDE_IP, vpcEndpointId="vpce-0abc"))),
        Case("a service hostname as the source", envelope(_session("Decrypt", "cloudformation.amazonaws.com"))),
        Case("AWS Internal", envelope(_session("SendHeartbeat", "AWS Internal", source="ec2messages.amazonaws.com"))),
        Case("an AWS service calling for the instance", envelope(_session(
            "DescribeInstances", OUTSIDE_IP, userIdentity={"type": "AssumedRole", "invokedBy": "eks.amazonaws.com",
                                                           "arn": "arn:aws:sts::123456789012:assumed-role/R/i-0abcdef1234567890"}))),
        Case("the SSM agent's session channel", envelope(_session(
            "CreateControlChannel", OUTSIDE_IP, source="ssmmessages.amazonaws.com"))),
        Case("a role session that is not an instance", envelope(event(
            "DescribeInstances", source="ec2.amazonaws.com", ip=OUTSIDE_IP, ui_type="AssumedRole", role="MyCustomRole",
            session="session"))),
        Case("anonymised address shared with an IAM user", envelope(
            event("DescribeInstances", source="ec2.amazonaws.com", ip="192.168.10.20", user="bert",
                  t="2024-05-01T11:58:00Z"),
            _session("GetCallerIdentity", "192.168.10.20", source="sts.amazonaws.com")), expect=(OUTSIDE,)),
        Case("invalid address (anonymised)", envelope(_session("DescribeInstances", "08.1.250.216"))),
        Case("credentials used from another of our instances (affiliated: Medium)", envelope(
            event("RunInstances", source="ec2.amazonaws.com", user="admin", t="2024-05-01T11:00:00Z", response={
                "instancesSet": {"items": [{"instanceId": "i-0bbbbbbbbbbbbbbbb", "privateIpAddress": "10.0.2.9",
                                            "networkInterfaceSet": {"items": []}}]}}),
            _session("ListBuckets", "10.0.2.9", source="s3.amazonaws.com")), expect=(INSIDE,),
             expect_severity={INSIDE: 5.0}),
    ]


@rule(source=CLOUDTRAIL, finding_types=(OUTSIDE, INSIDE), cases=_cases(),
      settings={"human_window_hours": Setting(24, "how long an address people called from stays known"),
                "region_check": Setting(True, "flag AWS addresses in another Region than the instance's")},
      state="per instance: the addresses it calls from (learned); per AWS or private address people called "
            "from: when (so a stolen session used from the same box is recognised)", history=True)
def instance_credential_exfiltration(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    # Calls made by a principal, tested together with each use's own condition: one filter each,
    # no copy of every caller's row first.
    caller = by_caller()
    window = timedelta(hours=ctx.setting("human_window_hours"))
    ranges = aws_ranges()
    humans = _remember_people(frame, caller, ctx, ranges)
    sessions = frame.filter(caller & (pl.col("ui_type") == "AssumedRole")).with_columns(
        pl.col("ui_arn").str.extract(INSTANCE_SESSION, 1).alias("instance")).filter(pl.col("instance").is_not_null())
    if sessions.is_empty():
        return
    agent = (pl.col("user_agent").fill_null("").str.contains("amazon-ssm-agent", literal=True)
             | pl.col("event_source").is_in(AGENT_SOURCES))
    home_rows = sessions.filter(agent).select("instance", "source_ip").unique()
    uses = sessions.filter(~agent & pl.col("vpc_endpoint_id").is_null())
    instances = sorted(set(sessions["instance"].to_list()))
    homes = {k.split(":", 1)[1]: set(v) for k, v in ctx.state_get([f"home:{i}" for i in instances]).items()}
    changed: set[str] = set()
    for instance, ip in home_rows.iter_rows():
        if parse_ip(ip) is not None and ip not in homes.setdefault(instance, set()):
            homes[instance].add(ip)
            changed.add(instance)
    pairs = uses.sort("event_time").group_by("instance", "source_ip", maintain_order=True).agg(
        pl.col("event_time").first().alias("first"), pl.col("event_source").first().alias("service"),
        pl.col("region").first().alias("call_region")).sort("first")
    candidate_ips = [ip for ip in pairs["source_ip"].unique().to_list() if ip not in humans]
    humans.update({k.split(":", 1)[1]: v for k, v in ctx.state_get([f"human:{ip}" for ip in candidate_ips]).items()})
    flagged: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for instance, ip, first, service, call_region in pairs.iter_rows():
        addr = parse_ip(ip)
        if addr is None:
            continue
        home = homes.setdefault(instance, set())
        linked = ctx.inventory.links.get(ip) if ctx.inventory is not None else None
        if ip in home or linked == instance:
            continue
        seen = humans.get(ip)
        human = bool(seen and first - datetime.fromisoformat(seen) <= window)
        aws = ranges.lookup(ip)
        verdict: tuple[str, dict[str, Any]] | None = None
        if linked and linked != instance:
            verdict = (INSIDE, {"affiliated": True, "reason": f"the address belongs to our instance {linked}"})
        elif addr.is_private or addr.is_link_local:
            if human:
                verdict = (OUTSIDE, {"reason": "people call from the same (private) address"})
        elif aws is None:
            verdict = (OUTSIDE, {"reason": "the address is outside AWS's published ranges"})
        elif human:
            verdict = (INSIDE, {"reason": f"people call from the same AWS address ({aws.region})"})
        elif ctx.setting("region_check"):
            home_regions = {r.region for r in (ranges.lookup(h) for h in home) if r is not None}
            if home_regions and aws.region not in home_regions and aws.region != "GLOBAL":
                verdict = (INSIDE, {"reason": f"an AWS address in {aws.region}, the instance's addresses are in "
                                              f"{', '.join(sorted(home_regions))}"})
            elif (not home_regions and service not in GLOBAL_SERVICES and aws.region != "GLOBAL"
                  and call_region and aws.region != call_region):
                verdict = (INSIDE, {"reason": f"an AWS address in {aws.region} calling {call_region}"})
        if verdict is None:
            if len(home) < MAX_HOME:
                home.add(ip)
                changed.add(instance)
            continue
        flagged[(instance, ip)] = verdict
    for instance in changed:
        ctx.state_put(f"home:{instance}", sorted(homes[instance]))
    if not flagged:
        return
    rows = rows_of(uses.filter(pl.concat_str("instance", pl.lit("|"), "source_ip").is_in(
        [f"{i}|{ip}" for i, ip in flagged])))
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["instance"], row["source_ip"]), []).append(row)
    for (instance, ip), hits in grouped.items():
        finding_type, info = flagged[(instance, ip)]
        affiliated = info.pop("affiliated", False)
        where = "outside AWS" if finding_type == OUTSIDE else "another AWS account or instance"
        detection = ct_detection(
            hits, finding_type, dedup_key=f"{instance}|{ip}", severity=5.0 if affiliated else None,
            title=f"Credentials for instance {instance} were used from {where} ({ip}).",
            description=f"The temporary credentials of instance {instance}'s role "
                        f"{hits[-1].get('ui_issuer_user_name') or ''} were used from {ip}: {info['reason']}. "
                        "They may have been stolen from the instance (metadata service, SSRF, malware).",
            extra_info={"instanceId": instance, "reason": info["reason"]},
        )
        if finding_type == INSIDE:
            detection.service["action"]["awsApiCallAction"]["remoteAccountDetails"] = {
                "accountId": hits[-1].get("ui_account_id") if affiliated else "", "affiliated": affiliated}
        yield detection


def _remember_people(frame: pl.DataFrame, caller: pl.Expr, ctx: RuleContext, ranges: Any) -> dict[str, str]:
    """Addresses people called from in this frame (AWS or private ones only: outside addresses are
    decided by the ranges alone), remembered in ctx.state with the last time."""
    people = frame.filter(caller & pl.col("ui_type").is_in(HUMAN_TYPES) & pl.col("source_ip").is_not_null()).group_by(
        "source_ip").agg(pl.col("event_time").max())
    out: dict[str, str] = {}
    for ip, last in people.iter_rows():
        addr = parse_ip(ip)
        if addr is None or not (addr.is_private or ranges.lookup(ip) is not None):
            continue
        out[ip] = last.isoformat()
        ctx.state_put(f"human:{ip}", out[ip])
    return out
