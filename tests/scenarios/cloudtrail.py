"""A labelled CloudTrail scenario: accounts with people who have habits (office and home addresses in
their own country, their usual APIs, a morning console sign-in), a traveller and a VPN user, roles,
instance roles (SSM agent, S3 data events from the instance's own address and through a VPC
endpoint, a restart that changes the address, a CI runner behind the same NAT), a CI user that
builds and tears down a test stack with a trail every day, a password policy made stronger, then
the IAM and S3 attacks of GuardDuty's tables 5.2/5.3, each on its own principal or bucket so that
labels are unambiguous. Objects are hourly, gzip'd, in AWS's S3 layout, like the network scenario
(tests/scenarios/generator.py), and scored by tests/scenarios/scorer.py.
"""

from __future__ import annotations

import gzip
import ipaddress
import random
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from ingest.awsranges import DATA_FILE, aws_ranges
from ingest.rules import REGISTRY, load_rules
from ingest.rules._ct import country_of
from ingest.synthetic import cloudtrail_body, cloudtrail_key, iso
from tests.scenarios.generator import CUSTOM_IP, START, Label, Scenario, Trap, listed_ips, tor_ips

REGION = "us-east-1"
CLI_UBUNTU = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1017-aws exe/x86_64.ubuntu.22 prompt/off command/{cmd}"
CLI_MAC = "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/{cmd}"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
TERRAFORM = "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.40.0"
SSM_AGENT = "aws-sdk-go/1.50.0 (go1.21.5; linux; amd64) amazon-ssm-agent/3.3.40.0"
APP_SDK = "Boto3/1.34.60 md/Botocore#1.34.60 ua/2.0 os/linux#6.1.0-1017-aws md/arch#x86_64 lang/python#3.11.8"
PENTEST_AGENTS = {
    "KaliLinux": "aws-cli/2.15.0 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 prompt/off command/{cmd}",
    "ParrotLinux": "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.5.0-13parrot1-amd64 lang/python#3.11.2 "
                   "distrib#parrot.6.0",
    "PentooLinux": "aws-sdk-go/1.50.0 (go1.21.5; linux; amd64) Linux/6.6.8-pentoo",
}
HABITS = {
    "alice": ("DE", [("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "DescribeSecurityGroups"),
                     ("cloudwatch.amazonaws.com", "GetMetricData"), ("ec2.amazonaws.com", "CreateTags")]),
    "bob": ("US", [("s3.amazonaws.com", "ListBuckets"), ("lambda.amazonaws.com", "ListFunctions20150331"),
                   ("logs.amazonaws.com", "FilterLogEvents"), ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2")]),
    "carol": ("FR", [("iam.amazonaws.com", "ListRoles"), ("iam.amazonaws.com", "GetRole"),
                     ("kms.amazonaws.com", "ListKeys"), ("sts.amazonaws.com", "GetCallerIdentity")]),
    "dave": ("JP", [("rds.amazonaws.com", "DescribeDBInstances"), ("ssm.amazonaws.com", "GetParameter"),
                    ("cloudformation.amazonaws.com", "DescribeStacks")]),
    "erin": ("DE", [("dynamodb.amazonaws.com", "DescribeTable"), ("sqs.amazonaws.com", "ListQueues")]),
}
STRONG_POLICY = {"minimumPasswordLength": 14, "requireSymbols": True, "requireNumbers": True,
                 "requireUppercaseCharacters": True, "requireLowercaseCharacters": True, "maxPasswordAge": 90,
                 "passwordReusePrevention": 24, "allowUsersToChangePassword": True}
FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def cloudtrail_types() -> set[str]:
    """What this scenario scores: every CloudTrail rule's types except the anomaly model's and the
    long-term root type (root.py's own cases cover it)."""
    load_rules()
    return {t for r in REGISTRY.values() if r.source == "cloudtrail" for t in r.finding_types
            if "AnomalousBehavior" not in t and t != "Policy:IAMUser/RootCredentialUsage"}


# --- addresses ---------------------------------------------------------------------------------------


@cache
def _ec2_prefixes(region: str) -> list[ipaddress.IPv4Network]:
    out = []
    for line in DATA_FILE.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == region and parts[2] == "EC2" and ":" not in parts[0]:
            net = ipaddress.ip_network(parts[0])
            if net.prefixlen <= 24:
                out.append(net)
    return out


def aws_ip(rng: random.Random, region: str = REGION) -> str:
    nets = _ec2_prefixes(region)
    while True:
        net = rng.choice(nets)
        ip = str(net.network_address + rng.randrange(1, net.num_addresses - 1))
        hit = aws_ranges().lookup(ip)
        if ip not in listed_ips() and hit is not None and hit.region == region and hit.ec2:
            return ip


def country_ip(rng: random.Random, code: str) -> str:
    """A public address geolocated in `code`, outside AWS, on no feed."""
    while True:
        ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        addr = ipaddress.ip_address(ip)
        if addr.is_private or addr.is_reserved or addr.is_multicast or ip in listed_ips():
            continue
        if country_of(ip)[0] == code and aws_ranges().lookup(ip) is None:
            return ip


def malicious_ips(n: int) -> list[str]:
    """Addresses of the built-in IPsum list that no other feed (Tor, scanners) names."""
    from intel.builtin import DATA_DIR

    others = set()
    for path in DATA_DIR.glob("*.txt"):
        if path.name != "ipsum_level3.txt":
            others.update(ln.strip() for ln in path.read_text().splitlines())
    ips = [ln.split()[0] for ln in (DATA_DIR / "ipsum_level3.txt").read_text().splitlines()
           if ln[:1].isdigit() and ln.split()[0] not in others]
    return ips[100:100 + n]


# --- records -----------------------------------------------------------------------------------------


class Account:
    def __init__(self, account: str, rng: random.Random) -> None:
        self.account, self.rng = account, rng
        self.events: list[dict[str, Any]] = []

    def identity(self, kind: str, name: str, session: str | None = None) -> dict[str, Any]:
        a = self.account
        if kind == "root":
            ident: dict[str, Any] = {"type": "Root", "principalId": a, "arn": f"arn:aws:iam::{a}:root", "accountId": a,
                                     "accessKeyId": "ASIA" + f"{self.rng.getrandbits(60):016X}"[:16]}
            if session == "assumed-root":
                ident["sessionContext"] = {"attributes": {"creationDate": iso(START), "mfaAuthenticated": "false"},
                                           "assumedRoot": "true"}
            return ident
        if kind == "role":
            return {"type": "AssumedRole", "principalId": f"AROA{name.upper().replace('-', '')[:12]:0<12}XY:{session}",
                    "arn": f"arn:aws:sts::{a}:assumed-role/{name}/{session}", "accountId": a,
                    "accessKeyId": "ASIA" + f"{abs(hash((name, session))) % 10**16:016d}",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROA{name.upper()[:12]}",
                                                         "arn": f"arn:aws:iam::{a}:role/{name}", "accountId": a,
                                                         "userName": name},
                                       "attributes": {"creationDate": iso(START), "mfaAuthenticated": "false"}}}
        return {"type": "IAMUser", "principalId": f"AIDA{name.upper().replace('-', '')[:12]:0<12}EX",
                "arn": f"arn:aws:iam::{a}:user/{name}", "accountId": a,
                "accessKeyId": f"AKIA{name.upper().replace('-', '')[:12]:0<12}EXMP", "userName": name}

    def call(self, t: datetime, source: str, name: str, ip: str, *, user: str = "", role: str = "", session: str = "",
             root: str = "", agent: str = CLI_UBUNTU, request: Any = None, response: Any = None, data: bool = False,
             error: str | None = None, **extra: Any) -> None:
        if root:
            identity = self.identity("root", "root", root)
        elif role:
            identity = self.identity("role", role, session)
        else:
            identity = self.identity("user", user)
        record = {
            "eventVersion": "1.09", "userIdentity": identity, "eventTime": iso(t), "eventSource": source,
            "eventName": name, "awsRegion": REGION, "sourceIPAddress": ip,
            "userAgent": agent.format(cmd=name.lower()), "requestParameters": request, "responseElements": response,
            "requestID": f"{self.rng.getrandbits(64):016x}", "eventID": f"{self.rng.getrandbits(128):032x}",
            "readOnly": name.startswith(("Get", "List", "Describe", "Head")), "eventType": "AwsApiCall",
            "managementEvent": not data, "eventCategory": "Data" if data else "Management",
            "recipientAccountId": self.account,
        }
        if error:
            record["errorCode"] = error
        record.update(extra)
        self.events.append(record)

    def objects(self) -> list[tuple[datetime, str, bytes]]:
        hours: dict[datetime, list[dict[str, Any]]] = {}
        for e in self.events:
            t = datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00"))
            hours.setdefault(t.replace(minute=0, second=0), []).append(e)
        out = []
        for hour, events in sorted(hours.items()):
            events.sort(key=lambda e: e["eventTime"])
            key = cloudtrail_key(self.account, REGION, hour + timedelta(minutes=5), f"{self.rng.getrandbits(40):010x}")
            out.append((hour, key, gzip.compress(cloudtrail_body(events))))
        return out


def _benign(acct: Account, days: int, scenario: Scenario) -> dict[str, Any]:
    rng, a = acct.rng, acct.account
    people = {u: (country, country_ip(rng, country), country_ip(rng, country), apis)
              for u, (country, apis) in HABITS.items()}
    ctx: dict[str, Any] = {"people": people}
    # Instances: web-1..3 with their own public addresses, worker-4 behind a NAT shared with a CI runner.
    instances = {f"i-{rng.getrandbits(68):017x}": aws_ip(rng) for _ in range(3)}
    nat = aws_ip(rng)
    worker = f"i-{rng.getrandbits(68):017x}"
    ctx.update(instances=instances, nat=nat, worker=worker)
    ci_ip = country_ip(rng, "US")
    data_bucket, logs_bucket = f"app-data-{a}", f"app-logs-{a}"
    for day in range(days):
        base = START + timedelta(days=day)
        for user, (_country, office, home, apis) in people.items():
            if user == "dave" and day == 1:
                continue  # travelling: signs in from the US a day after Japan (below)
            login_ip = home if rng.random() < 0.3 else office
            acct.call(base + timedelta(hours=7, minutes=rng.randrange(50)), "signin.amazonaws.com", "ConsoleLogin",
                      login_ip, user=user, agent=BROWSER, response={"ConsoleLogin": "Success"},
                      additionalEventData={"MFAUsed": "Yes", "LoginTo": "https://console.aws.amazon.com"})
            for hour in range(8, 18):
                for _ in range(rng.randrange(2, 8)):
                    source, name = rng.choice(apis)
                    acct.call(base + timedelta(hours=hour, minutes=rng.randrange(60), seconds=rng.randrange(60)),
                              source, name, login_ip, user=user, agent=rng.choice([CLI_UBUNTU, CLI_MAC]),
                              request={"maxResults": 50})
        if day == 1:
            dave_us = country_ip(rng, "US")
            acct.call(base + timedelta(hours=9), "signin.amazonaws.com", "ConsoleLogin", dave_us, user="dave",
                      agent=BROWSER, response={"ConsoleLogin": "Success"})
        # carol's VPN flips her between France and Germany (neighbours): no impossible travel.
        acct.call(base + timedelta(hours=12, minutes=5), "signin.amazonaws.com", "ConsoleLogin",
                  country_ip(rng, "DE"), user="carol", agent=BROWSER, response={"ConsoleLogin": "Success"})
        for hour in range(24):
            t = base + timedelta(hours=hour)
            for i, (instance, ip) in enumerate(instances.items()):
                if i == 2 and day >= 1:
                    ip = instances[instance] = ctx.setdefault("restarted_ip", aws_ip(rng))  # new address after restart
                acct.call(t + timedelta(minutes=rng.randrange(5)), "ssm.amazonaws.com", "UpdateInstanceInformation", ip,
                          role="web-role", session=instance, agent=SSM_AGENT, request={"instanceId": instance})
                for _ in range(rng.randrange(3, 9)):
                    when = t + timedelta(minutes=rng.randrange(60), seconds=rng.randrange(60))
                    if rng.random() < 0.3:  # through the S3 gateway endpoint: private address
                        acct.call(when, "s3.amazonaws.com", "GetObject", f"10.0.{i}.{rng.randrange(10, 200)}",
                                  role="web-role", session=instance, agent=APP_SDK, data=True,
                                  request={"bucketName": data_bucket, "key": f"assets/{rng.randrange(999)}.json"},
                                  vpcEndpointId="vpce-0a1b2c3d4e5f60718")
                    else:
                        acct.call(when, rng.choice(["s3.amazonaws.com", "dynamodb.amazonaws.com", "sqs.amazonaws.com"]),
                                  rng.choice(["GetObject", "PutObject"]), ip, role="web-role", session=instance,
                                  agent=APP_SDK, data=True,
                                  request={"bucketName": data_bucket, "key": f"cache/{rng.randrange(999)}"})
            acct.call(t + timedelta(minutes=rng.randrange(60)), "sqs.amazonaws.com", "ReceiveMessage", nat,
                      role="worker-role", session=worker, agent=APP_SDK)
            acct.call(t + timedelta(minutes=rng.randrange(60)), "ecr.amazonaws.com", "GetAuthorizationToken", nat,
                      role="ci-runner-role", session=f"gha-{rng.randrange(10**6)}", agent=APP_SDK)
            acct.call(t + timedelta(minutes=rng.randrange(60)), "lambda.amazonaws.com", "Invoke", aws_ip(rng),
                      role="scheduler-role", session="scheduler", agent=APP_SDK)
        # CI: a test stack with its own trail, built and torn down.
        stack = f"ci-test-{a}-{day}"
        t = base + timedelta(hours=3)
        ci = {"user": "deploy-bot", "agent": TERRAFORM}
        acct.call(t, "s3.amazonaws.com", "CreateBucket", ci_ip, request={"bucketName": stack, "x-amz-acl": "private"}, **ci)
        acct.call(t + timedelta(seconds=2), "s3.amazonaws.com", "PutBucketPublicAccessBlock", ci_ip, request={
            "bucketName": stack, "PublicAccessBlockConfiguration": dict.fromkeys(FLAGS, True)}, **ci)
        acct.call(t + timedelta(seconds=3), "s3.amazonaws.com", "PutBucketPolicy", ci_ip, request={
            "bucketName": stack, "bucketPolicy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
                 "Resource": f"arn:aws:s3:::{stack}/*", "Condition": {"StringEquals": {"aws:SourceAccount": a}}}]}}, **ci)
        acct.call(t + timedelta(seconds=8), "cloudtrail.amazonaws.com", "CreateTrail", ci_ip,
                  request={"name": stack, "s3BucketName": stack, "isMultiRegionTrail": False}, **ci)
        acct.call(t + timedelta(seconds=9), "cloudtrail.amazonaws.com", "StartLogging", ci_ip, request={"name": stack}, **ci)
        acct.call(t + timedelta(seconds=10), "cloudtrail.amazonaws.com", "PutEventSelectors", ci_ip, request={
            "trailName": stack, "eventSelectors": [{"readWriteType": "All", "includeManagementEvents": True,
                                                    "dataResources": [{"type": "AWS::S3::Object",
                                                                       "values": [f"arn:aws:s3:::{data_bucket}/"]}]}]}, **ci)
        acct.call(t + timedelta(minutes=25), "cloudtrail.amazonaws.com", "DeleteTrail", ci_ip, request={"name": stack}, **ci)
        acct.call(t + timedelta(minutes=25, seconds=3), "s3.amazonaws.com", "DeleteBucket", ci_ip,
                  request={"bucketName": stack}, **ci)
        scenario.traps.append(Trap(a, stack, "CI stack trail torn down by its creator"))
        if day == 0:
            admin_ip = people["alice"][1]
            acct.call(base + timedelta(hours=9), "iam.amazonaws.com", "UpdateAccountPasswordPolicy", admin_ip, user="alice",
                      request=STRONG_POLICY)
            acct.call(base + timedelta(hours=9, minutes=2), "s3.amazonaws.com", "PutBucketLogging", admin_ip, user="alice",
                      request={"bucketName": data_bucket, "BucketLoggingStatus": {"LoggingEnabled": {
                          "TargetBucket": logs_bucket, "TargetPrefix": "access/"}}})
            acct.call(base + timedelta(hours=9, minutes=4), "cloudtrail.amazonaws.com", "CreateTrail", admin_ip,
                      user="alice", request={"name": "audit-trail", "s3BucketName": f"audit-trail-logs-{a}"})
            acct.call(base + timedelta(hours=9, minutes=4, seconds=2), "cloudtrail.amazonaws.com", "StartLogging",
                      admin_ip, user="alice", request={"name": "audit-trail"})
            acct.call(base + timedelta(hours=9, minutes=6), "cloudtrail.amazonaws.com", "UpdateTrail", admin_ip,
                      user="alice", request={"name": "audit-trail", "s3KeyPrefix": "org"})
        if day == 1:
            acct.call(base + timedelta(hours=10), "iam.amazonaws.com", "UpdateAccountPasswordPolicy", people["alice"][1],
                      user="alice", request={**STRONG_POLICY, "minimumPasswordLength": 16})
    for user in ("dave", "carol", "deploy-bot"):
        scenario.traps.append(Trap(a, f'"userName": "{user}"', f"{user}'s habits"))
    scenario.traps.append(Trap(a, worker, "worker instance behind a NAT shared with CI"))
    return ctx


def _attacks(acct: Account, days: int, scenario: Scenario, index: int) -> None:
    rng, a = acct.rng, acct.account
    day = START + timedelta(days=days - 1, hours=13 + index)
    tor = tor_ips(40)[index * 6:(index + 1) * 6]
    bad = malicious_ips(60)[index * 6:(index + 1) * 6]
    label = lambda t, res, note="": scenario.labels.append(Label(a, t, res, note))  # noqa: E731
    also = lambda t, res: scenario.acceptable.append(Label(a, t, res))  # noqa: E731
    ru = country_ip(rng, "RU")

    def at(minutes: float) -> datetime:
        return day + timedelta(minutes=minutes)

    # Stealth.
    acct.call(at(1), "iam.amazonaws.com", "UpdateAccountPasswordPolicy", ru, user="svc-policy",
              request={"minimumPasswordLength": 6, "allowUsersToChangePassword": True})
    label("Stealth:IAMUser/PasswordPolicyChange", '"userName": "svc-policy"')
    acct.call(at(2), "cloudtrail.amazonaws.com", "StopLogging", ru, user="ops-legacy",
              request={"name": f"arn:aws:cloudtrail:{REGION}:{a}:trail/org-trail"})
    label("Stealth:IAMUser/CloudTrailLoggingDisabled", "org-trail")
    acct.call(at(3), "s3.amazonaws.com", "DeleteBucket", ru, user="janitor", request={"bucketName": f"audit-trail-logs-{a}"})
    label("Stealth:IAMUser/CloudTrailLoggingDisabled", "audit-trail")
    acct.call(at(4), "s3.amazonaws.com", "PutBucketLogging", ru, user="intern", request={
        "bucketName": f"app-data-{a}", "BucketLoggingStatus": {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/"}})
    label("Stealth:S3/ServerAccessLoggingDisabled", f"app-data-{a}")
    # Exposure.
    acct.call(at(5), "s3.amazonaws.com", "DeleteBucketPublicAccessBlock", ru, user="webdev",
              request={"bucketName": f"reports-{a}"})
    label("Policy:S3/BucketBlockPublicAccessDisabled", f"reports-{a}")
    acct.call(at(6), "s3.amazonaws.com", "PutAccountPublicAccessBlock", ru, user="webdev2", request={
        "PublicAccessBlockConfiguration": dict.fromkeys(FLAGS, False)})
    label("Policy:S3/AccountBlockPublicAccessDisabled", '"userName": "webdev2"')
    acct.call(at(7), "s3.amazonaws.com", "PutBucketPolicy", ru, user="analyst", request={
        "bucketName": f"exports-{a}", "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": "*",
                                                                     "Action": "s3:GetObject", "Resource": "*"}]}})
    label("Policy:S3/BucketAnonymousAccessGranted", f"exports-{a}")
    acct.call(at(8), "s3.amazonaws.com", "PutBucketAcl", ru, user="analyst2", request={
        "bucketName": f"shared-{a}", "x-amz-grant-read": ["uri=http://acs.amazonaws.com/groups/global/AuthenticatedUsers"]})
    label("Policy:S3/BucketPublicAccessGranted", f"shared-{a}")
    # Pen-test tooling: management calls and S3 data events from each distribution.
    for i, (distro, agent) in enumerate(PENTEST_AGENTS.items()):
        user = f"pt-{distro.lower()}"
        acct.call(at(10 + i), "iam.amazonaws.com", "ListUsers", ru, user=user, agent=agent)
        acct.call(at(10.5 + i), "s3.amazonaws.com", "GetObject", ru, user=user, agent=agent, data=True,
                  request={"bucketName": f"app-data-{a}", "key": "db.sql"})
        label(f"PenTest:IAMUser/{distro}", f'"userName": "{user}"')
        label(f"PenTest:S3/{distro}", f'"userName": "{user}"')
    # Bad callers, IAM.
    for ip, user, kind in ((tor[0], "tor-user", "TorIPCaller"), (bad[0], "mal-user", "MaliciousIPCaller"),
                           (CUSTOM_IP, "cust-user", "MaliciousIPCaller.Custom")):
        acct.call(at(15), "iam.amazonaws.com", "ListUsers", ip, user=user)
        acct.call(at(16), "iam.amazonaws.com", "CreateUser", ip, user=user, request={"userName": "backdoor"})
        label(f"Recon:IAMUser/{kind}", f'"userName": "{user}"')
        label(f"UnauthorizedAccess:IAMUser/{kind}", f'"userName": "{user}"')
    # Bad callers, S3 data events (each on its own bucket).
    families = (("malicious", bad[1], ("Discovery:S3/MaliciousIPCaller", "Exfiltration:S3/MaliciousIPCaller",
                                        "Impact:S3/MaliciousIPCaller")),
                ("custom", CUSTOM_IP, ("Discovery:S3/MaliciousIPCaller.Custom",
                                       "UnauthorizedAccess:S3/MaliciousIPCaller.Custom",
                                       "UnauthorizedAccess:S3/MaliciousIPCaller.Custom")),
                ("tor", tor[1], ("Discovery:S3/TorIPCaller", "UnauthorizedAccess:S3/TorIPCaller",
                                 "UnauthorizedAccess:S3/TorIPCaller")))
    for family, ip, types in families:
        bucket, user = f"{family}-target-{a}", f"s3-{family}"
        for minute, (api, finding_type) in enumerate(zip(("ListObjects", "GetObject", "DeleteObject"), types,
                                                         strict=True)):
            acct.call(at(20 + minute), "s3.amazonaws.com", api, ip, user=user, data=True,
                      request={"bucketName": bucket, "key": "payroll.csv"})
            label(finding_type, bucket)
        also("AttackSequence:S3/CompromisedData", bucket)
        also("AttackSequence:IAM/CompromisedCredentials", f'"userName": "{user}"')
    # Stolen instance credentials.
    instances = list(scenario_ctx[a]["instances"])
    acct.call(at(30), "sts.amazonaws.com", "GetCallerIdentity", country_ip(rng, "NL"), role="web-role",
              session=instances[0], agent=CLI_UBUNTU)
    acct.call(at(31), "ec2.amazonaws.com", "DescribeInstances", country_ip(rng, "NL"), role="web-role",
              session=instances[0], agent=CLI_UBUNTU)
    label("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", instances[0])
    acct.call(at(32), "s3.amazonaws.com", "ListBuckets", aws_ip(rng, "eu-west-1"), role="web-role", session=instances[1],
              agent=CLI_UBUNTU)
    label("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS", instances[1])
    # Console sign-ins: erin in Germany, then Brazil twenty minutes later.
    erin = scenario_ctx[a]["people"]["erin"][1]
    acct.call(at(40), "signin.amazonaws.com", "ConsoleLogin", erin, user="erin", agent=BROWSER,
              response={"ConsoleLogin": "Success"})
    acct.call(at(60), "signin.amazonaws.com", "ConsoleLogin", country_ip(rng, "BR"), user="erin", agent=BROWSER,
              response={"ConsoleLogin": "Success"})
    label("UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B", '"userName": "erin"')
    # A short-term root session (sts:AssumeRoot) at work.
    acct.call(at(45), "iam.amazonaws.com", "DeleteLoginProfile", ru, root="assumed-root", request={"userName": "bob"})
    label("Policy:IAMUser/ShortTermRootCredentialUsage", '"userType": "Root"')
    # Attack sequences: stolen keys used from Tor to look around and stop the audit trail...
    acct.call(at(70), "iam.amazonaws.com", "ListAttachedUserPolicies", tor[2], user="victim")
    acct.call(at(72), "cloudtrail.amazonaws.com", "StopLogging", tor[2], user="victim", request={"name": "victim-trail"})
    label("AttackSequence:IAM/CompromisedCredentials", '"userName": "victim"')
    for t in ("Recon:IAMUser/TorIPCaller", "UnauthorizedAccess:IAMUser/TorIPCaller"):
        also(t, '"userName": "victim"')
    also("Stealth:IAMUser/CloudTrailLoggingDisabled", "victim-trail")
    # ...and a bucket opened to the world, then read from Tor.
    crown = f"crown-{a}"
    acct.call(at(80), "s3.amazonaws.com", "PutBucketPolicy", ru, user="leaker", request={
        "bucketName": crown, "bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{crown}/*"}]}})
    for k in range(5):
        acct.call(at(85 + k), "s3.amazonaws.com", "GetObject", tor[3], user="leaker", data=True,
                  request={"bucketName": crown, "key": f"customers/{k}.csv"})
    label("AttackSequence:S3/CompromisedData", crown)
    also("Policy:S3/BucketAnonymousAccessGranted", crown)
    also("UnauthorizedAccess:S3/TorIPCaller", crown)
    also("AttackSequence:IAM/CompromisedCredentials", '"userName": "leaker"')


scenario_ctx: dict[str, dict[str, Any]] = {}


def build(*, accounts: int = 2, days: int = 2, seed: int = 11) -> Scenario:
    rng = random.Random(seed)
    scenario = Scenario(threat_list=[CUSTOM_IP])
    timed: list[tuple[datetime, str, bytes]] = []
    for i in range(accounts):
        acct = Account(f"{222222222222 + i * 111111111:012d}", random.Random(rng.getrandbits(32)))
        scenario_ctx[acct.account] = _benign(acct, days, scenario)
        _attacks(acct, days, scenario, i)
        scenario.records += len(acct.events)
        timed += acct.objects()
    timed.sort(key=lambda x: (x[0], x[1]))
    scenario.objects = [(key, body) for _, key, body in timed]
    return scenario
