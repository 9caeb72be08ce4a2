"""A generator of CloudTrail activity for one AWS account: weeks of benign habits per principal,
then injected anomalies and benign variations, with the ground truth of what must be found.

Habits per principal: the regions, APIs, networks, user agents and working hours it uses, with
noise (an occasional never-seen read API, a home network in the same ISP, varying volumes, quiet
weekends). Addresses are real public ranges so that ASN lookups mean something.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import polars as pl

ACCOUNT = "123456789012"
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
HISTORY_DAYS = 21
TEST_DAYS = 7

OFFICE = "81.2.69.{}"  # Andrews & Arnold (GB)
HOME_A = "73.15.20.{}"  # Comcast
HOME_B = "98.200.10.{}"  # Comcast, another /24 of the same ASN
CI = "3.80.1.{}"  # AMAZON-AES
INSTANCE_IP = "54.239.28.85"  # AMAZON-02
ATTACK_NET = "5.188.10.{}"  # Green Floid LLC
ATTACK_NET_2 = "89.187.160.{}"  # Datacamp Limited
ATTACK_NET_3 = "62.210.16.{}"  # Scaleway

CLI_213 = "aws-cli/2.13.5 Python/3.11.4 Linux/6.2.0 exe/x86_64.ubuntu.22 prompt/off command/{}"
CLI_215 = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/{}"
CONSOLE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-aws/5.31.0"
BOTO_APP = "Boto3/1.28.40 md/Botocore#1.31.40 ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.11.4"
ATTACK_UA = "python-requests/2.31.0"

READS = {
    "ec2.amazonaws.com": ["DescribeInstances", "DescribeSecurityGroups", "DescribeVpcs", "DescribeSubnets"],
    "s3.amazonaws.com": ["ListBuckets", "GetBucketLocation", "GetBucketPolicy"],
    "lambda.amazonaws.com": ["ListFunctions20150331", "GetFunction20150331v2"],
    "logs.amazonaws.com": ["DescribeLogGroups", "FilterLogEvents"],
    "cloudwatch.amazonaws.com": ["GetMetricData", "DescribeAlarms"],
}
# The long tail: reads a principal may call once in a while (benign novelty).
RARE_READS = [("ec2.amazonaws.com", "DescribeImages"), ("ec2.amazonaws.com", "DescribeVolumes"),
              ("s3.amazonaws.com", "GetBucketTagging"), ("rds.amazonaws.com", "DescribeDBInstances"),
              ("sns.amazonaws.com", "ListTopics"), ("sqs.amazonaws.com", "ListQueues"),
              ("ecr.amazonaws.com", "DescribeRepositories"), ("dynamodb.amazonaws.com", "ListTables")]


@dataclass
class Habit:
    name: str
    ptype: str  # IAMUser | AssumedRole
    arn: str
    principal_id: str
    access_key: str
    regions: list[tuple[str, float]]
    apis: list[tuple[str, str]]
    networks: list[tuple[str, float]]
    user_agents: list[str]
    hours: range
    per_hour: tuple[int, int]
    weekend: bool = False  # active at weekends too
    issuer: str = ""
    start_day: int = 0
    rare_read_chance: float = 0.15


def _reads(*services: str) -> list[tuple[str, str]]:
    return [(s, n) for s in services for n in READS[s]]


def habits() -> list[Habit]:
    role = f"arn:aws:iam::{ACCOUNT}:role"
    return [
        Habit("alice", "IAMUser", f"arn:aws:iam::{ACCOUNT}:user/alice", "AIDAALICE0000000001", "AKIAALICE00000000001",
              [("us-east-1", 0.9), ("eu-west-1", 0.1)], [*_reads("ec2.amazonaws.com", "s3.amazonaws.com", "logs.amazonaws.com"), ("s3.amazonaws.com", "PutObject"), ("ec2.amazonaws.com", "StartInstances")],
              [(OFFICE, 0.8), (HOME_A, 0.2)], [CONSOLE, CLI_213], range(8, 18), (5, 40)),
        Habit("bob", "IAMUser", f"arn:aws:iam::{ACCOUNT}:user/bob", "AIDABOB000000000002", "AKIABOB0000000000002",
              [("us-east-1", 0.7), ("us-west-2", 0.3)], [*_reads("ec2.amazonaws.com", "lambda.amazonaws.com", "cloudwatch.amazonaws.com"), ("ec2.amazonaws.com", "RunInstances"), ("ec2.amazonaws.com", "TerminateInstances"), ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2")],
              [(OFFICE, 0.6), (HOME_A, 0.4)], [CLI_213], range(9, 19), (10, 60)),
        Habit("carol", "IAMUser", f"arn:aws:iam::{ACCOUNT}:user/carol", "AIDACAROL0000000003", "AKIACAROL00000000003",
              [("us-east-1", 1.0)], [("iam.amazonaws.com", n) for n in
                                     ("ListUsers", "GetUser", "ListRoles", "CreateUser", "AttachUserPolicy",
                                      "CreateAccessKey", "ListAccessKeys", "DeleteAccessKey")]
              + _reads("s3.amazonaws.com"),
              [(OFFICE, 0.7), (HOME_B, 0.3)], [CONSOLE], range(7, 16), (3, 20)),
        Habit("ci", "AssumedRole", f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deploy/gh-run", "AROACI0000000000004:gh-run",
              "ASIACI00000000000004", [("us-east-1", 0.8), ("us-west-2", 0.2)],
              [*_reads("ec2.amazonaws.com", "lambda.amazonaws.com", "s3.amazonaws.com"), ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2"), ("s3.amazonaws.com", "PutObject"), ("ec2.amazonaws.com", "CreateTags"), ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress")],
              [(CI, 1.0)], [TERRAFORM], range(24), (20, 80), weekend=True, issuer=f"{role}/ci-deploy",
              rare_read_chance=0.05),
        Habit("app", "AssumedRole", f"arn:aws:sts::{ACCOUNT}:assumed-role/app-server/i-0a1b2c3d4e5f60718",
              "AROAAPP000000000005:i-0a1b2c3d4e5f60718", "ASIAAPP0000000000005", [("us-east-1", 1.0)],
              [("s3.amazonaws.com", "GetObject"), ("s3.amazonaws.com", "PutObject"), ("sqs.amazonaws.com", "ReceiveMessage"),
               ("sqs.amazonaws.com", "DeleteMessage"), ("kms.amazonaws.com", "Decrypt")],
              [(INSTANCE_IP, 1.0)], [BOTO_APP], range(24), (30, 120), weekend=True, issuer=f"{role}/app-server",
              rare_read_chance=0.0),
        # Joins in the test week: everything is new, but it is still inside its learning period.
        Habit("dave", "IAMUser", f"arn:aws:iam::{ACCOUNT}:user/dave", "AIDADAVE00000000006", "AKIADAVE000000000006",
              [("us-east-1", 0.5), ("eu-central-1", 0.5)], [*_reads("ec2.amazonaws.com", "s3.amazonaws.com"), ("iam.amazonaws.com", "ListUsers"), ("ec2.amazonaws.com", "RunInstances")],
              [(ATTACK_NET_3, 1.0)], ["Boto3/1.34.2 md/Botocore#1.34.2 ua/2.0 lang/python#3.12.1"], range(10, 20),
              (10, 50), start_day=HISTORY_DAYS + 1),
    ]


def _event(h: Habit, when: datetime, source: str, name: str, region: str, ip: str, ua: str, *,
           error: str | None = None, params: dict | None = None) -> dict:
    return {
        "event_time": when, "account_id": ACCOUNT, "region": region, "event_source": source, "event_name": name,
        "principal_type": h.ptype, "principal_arn": h.arn, "principal_id": h.principal_id,
        "user_name": h.name if h.ptype == "IAMUser" else None, "access_key_id": h.access_key,
        "session_issuer_arn": h.issuer or None, "error_code": error, "source_ip": ip, "user_agent": ua,
        "event_id": str(uuid.UUID(int=random.getrandbits(128))),
        "request_parameters": json.dumps(params) if params else None,
    }


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def benign_day(rng: random.Random, h: Habit, day: int, *, upgraded_cli: bool = False) -> list[dict]:
    date = START + timedelta(days=day)
    weekend = date.weekday() >= 5
    if day < h.start_day or (weekend and not h.weekend):
        return []
    events = []
    network = _pick(rng, h.networks)  # one network per day (office or home)
    host = rng.randint(2, 250)
    active = [hr for hr in h.hours if rng.random() < (0.25 if weekend else 0.75)]
    for hour in active:
        region = _pick(rng, h.regions)
        ua = rng.choice(h.user_agents)
        if upgraded_cli and ua == CLI_213:
            ua = CLI_215
        for _ in range(rng.randint(*h.per_hour)):
            source, name = rng.choice(h.apis)
            when = date + timedelta(hours=hour, seconds=rng.randint(0, 3599))
            ip = network.format(host) if "{}" in network else network
            events.append(_event(h, when, source, name, region, ip, ua.format(name.lower())))
        if rng.random() < h.rare_read_chance:
            source, name = rng.choice(RARE_READS)
            when = date + timedelta(hours=hour, seconds=rng.randint(0, 3599))
            ip = network.format(host) if "{}" in network else network
            events.append(_event(h, when, source, name, region, ip, ua.format(name.lower())))
    return events


@dataclass
class Injected:
    name: str
    principal: str  # baseline key
    when: datetime  # the hour
    expected_types: tuple[str, ...]
    events: list[dict] = field(default_factory=list)


def injected(rng: random.Random, by_name: dict[str, Habit]) -> list[Injected]:
    day = START + timedelta(days=HISTORY_DAYS)
    out = []
    bob, alice, carol = by_name["bob"], by_name["alice"], by_name["carol"]

    when = day + timedelta(days=1, hours=3)
    launch = Injected("new region deployment", bob.arn, when, ("Impact:IAMUser/AnomalousBehavior",))
    for i in range(3):
        launch.events.append(_event(bob, when + timedelta(minutes=5 * i), "ec2.amazonaws.com", "RunInstances",
                                    "ap-southeast-1", OFFICE.format(77), CLI_213.format("run-instances"),
                                    params={"instanceType": "p3.16xlarge", "maxCount": 10, "minCount": 10}))
    launch.events.append(_event(bob, when + timedelta(minutes=1), "ec2.amazonaws.com", "DescribeInstances",
                                "ap-southeast-1", OFFICE.format(77), CLI_213.format("describe-instances")))
    out.append(launch)

    when = day + timedelta(days=2, hours=14)
    burst = Injected("discovery burst from new network and user agent", alice.arn, when,
                     ("Discovery:IAMUser/AnomalousBehavior",))
    recon = [("iam.amazonaws.com", "ListUsers"), ("iam.amazonaws.com", "ListRoles"), ("iam.amazonaws.com", "ListPolicies"),
             ("iam.amazonaws.com", "GetAccountAuthorizationDetails"), ("s3.amazonaws.com", "ListBuckets"),
             ("ec2.amazonaws.com", "DescribeInstances"), ("secretsmanager.amazonaws.com", "ListSecrets"),
             ("sts.amazonaws.com", "GetCallerIdentity"), ("organizations.amazonaws.com", "DescribeOrganization"),
             ("ec2.amazonaws.com", "DescribeRegions")]
    for i in range(60):
        source, name = recon[i % len(recon)]
        burst.events.append(_event(alice, when + timedelta(seconds=20 * i), source, name, "us-east-1",
                                   ATTACK_NET.format(13), ATTACK_UA,
                                   error="AccessDenied" if name == "GetAccountAuthorizationDetails" else None))
    out.append(burst)

    when = day + timedelta(days=3, hours=10)
    persist = Injected("IAM persistence by a principal that never writes IAM", bob.arn, when,
                       ("Persistence:IAMUser/AnomalousBehavior", "PrivilegeEscalation:IAMUser/AnomalousBehavior"))
    for i, name in enumerate(("CreateUser", "CreateAccessKey", "AttachUserPolicy", "CreateLoginProfile")):
        persist.events.append(_event(bob, when + timedelta(minutes=3 * i + 2), "iam.amazonaws.com", name, "us-east-1",
                                     OFFICE.format(77), CLI_213.format(name.lower())))
    for i in range(8):  # his usual work around it
        source, name = rng.choice(bob.apis[:6])
        persist.events.append(_event(bob, when + timedelta(minutes=5 * i), source, name, "us-east-1", OFFICE.format(77),
                                     CLI_213.format(name.lower())))
    out.append(persist)

    when = day + timedelta(days=4, hours=11)
    stolen = Injected("credential use from a new network", carol.arn, when, ("InitialAccess:IAMUser/AnomalousBehavior",))
    for i in range(6):
        source, name = carol.apis[i % 3]
        stolen.events.append(_event(carol, when + timedelta(minutes=4 * i), source, name, "us-east-1",
                                    ATTACK_NET_2.format(40), CONSOLE))
    out.append(stolen)
    return out


@dataclass
class Scenario:
    days: list[pl.DataFrame]  # one frame per day, in order
    injected: list[Injected]
    benign_checks: dict[str, str]  # variation -> principal key that must raise nothing in the test week


def day_frame(events: list[dict], attacks: list, day: int) -> pl.DataFrame:
    """One scenario day: its benign events and the attacks injected that day, in time order."""
    for attack in attacks:
        if attack.when.date() == (START + timedelta(days=day)).date():
            events += attack.events
    events.sort(key=lambda e: e["event_time"])
    return pl.DataFrame(events, schema_overrides={"event_time": pl.Datetime("us", "UTC")}, infer_schema_length=None)


@lru_cache(maxsize=4)  # frames are immutable: tests share one build per seed
def build(seed: int = 7) -> Scenario:
    rng = random.Random(seed)
    random.seed(seed)
    hs = habits()
    by_name = {h.name: h for h in hs}
    attacks = injected(rng, by_name)
    frames = []
    for day in range(HISTORY_DAYS + TEST_DAYS):
        events: list[dict] = []
        for h in hs:
            if h.name == "alice" and day >= HISTORY_DAYS:
                # benign variation: alice works a whole day in eu-west-1, a region she used before
                day_events = benign_day(rng, h, day)
                if day == HISTORY_DAYS + 1:
                    for e in day_events:
                        e["region"] = "eu-west-1"
                events += day_events
                continue
            # benign variation: bob upgrades the CLI within its major version for the test week
            events += benign_day(rng, h, day, upgraded_cli=h.name == "bob" and day >= HISTORY_DAYS)
        frames.append(day_frame(events, attacks, day))
    return Scenario(frames, attacks, {
        "second region used before": by_name["alice"].arn,
        "new similar user-agent version": by_name["bob"].arn,
        "quiet weekend": by_name["carol"].arn,
        "new employee inside the learning period": by_name["dave"].arn,
    })


def evaluate(findings, scenario: Scenario) -> dict:
    """Match findings to injected anomalies by principal and hour; everything else is a false positive."""
    test_start = START + timedelta(days=HISTORY_DAYS)
    found: dict[str, object] = {}
    false_positives = []
    for f in findings:
        if f.first_seen < test_start:
            false_positives.append(f)
            continue
        hour = f.first_seen.replace(minute=0, second=0, microsecond=0)
        match = next((a for a in scenario.injected if a.principal == f.subject and a.when == hour), None)
        if match is None:
            false_positives.append(f)
        else:
            found.setdefault(match.name, f)
    true_positives = len(findings) - len(false_positives)
    return {
        "found": found,
        "missed": [a.name for a in scenario.injected if a.name not in found],
        "false_positives": false_positives,
        "recall": len(found) / len(scenario.injected),
        "precision": true_positives / len(findings) if findings else 1.0,
    }


def to_cloudtrail(event: dict) -> dict:
    """A scenario event as CloudTrail writes it (for the real parser and pipeline)."""
    identity: dict = {"type": event["principal_type"], "principalId": event["principal_id"],
                      "arn": event["principal_arn"], "accountId": event["account_id"],
                      "accessKeyId": event["access_key_id"]}
    if event["user_name"]:
        identity["userName"] = event["user_name"]
    if event["session_issuer_arn"]:
        identity["sessionContext"] = {"sessionIssuer": {"type": "Role", "arn": event["session_issuer_arn"],
                                                        "userName": event["session_issuer_arn"].rsplit("/", 1)[-1]}}
    record = {
        "eventVersion": "1.08", "userIdentity": identity,
        "eventTime": event["event_time"].strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": event["event_source"],
        "eventName": event["event_name"], "awsRegion": event["region"], "sourceIPAddress": event["source_ip"],
        "userAgent": event["user_agent"], "requestParameters": json.loads(event["request_parameters"] or "null"),
        "responseElements": None, "eventID": event["event_id"], "eventType": "AwsApiCall",
        "managementEvent": True, "recipientAccountId": event["account_id"], "eventCategory": "Management",
    }
    if event["error_code"]:
        record["errorCode"] = event["error_code"]
    return record


def cloudtrail_objects(built: Scenario, principals: set[str] | None = None) -> list[bytes]:
    """One gzip'd `{"Records": [...]}` object per day (optionally only some principals' events)."""
    import gzip

    bodies = []
    for frame in built.days:
        rows = [r for r in frame.iter_rows(named=True) if principals is None or r["principal_arn"] in principals]
        bodies.append(gzip.compress(json.dumps({"Records": [to_cloudtrail(r) for r in rows]}).encode()))
    return bodies
