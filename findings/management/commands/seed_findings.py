"""Demo findings for the demo organisation (`make run`): repeated detections over the last 30 days.

Findings go through the real write path (findings_upsert_many), so aggregation, suppression and
the publication outbox behave as they do for real detections. Addresses are documentation ranges.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import Account
from findings.catalog import FINDING_TYPES
from findings.services import FindingDraft, findings_upsert_many

TYPES = [
    "Recon:EC2/PortProbeUnprotectedPort", "UnauthorizedAccess:EC2/SSHBruteForce", "Recon:EC2/Portscan",
    "UnauthorizedAccess:IAMUser/TorIPCaller", "CryptoCurrency:EC2/BitcoinTool.B!DNS", "Backdoor:EC2/C&CActivity.B",
    "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom", "Policy:S3/BucketBlockPublicAccessDisabled",
    "Discovery:S3/MaliciousIPCaller", "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
]
IPS = ["198.51.100.23", "203.0.113.77", "192.0.2.150", "198.51.100.201", "203.0.113.9"]


class Command(BaseCommand):
    help = "Create demo findings in every account that has a detector."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--count", type=int, default=400, help="Detections to generate (they aggregate).")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--force", action="store_true", help="Add findings even if some exist.")

    def handle(self, *args, count: int, seed: int, force: bool = False, **options) -> None:
        from findings.models import Finding

        if Finding.objects.exists() and not force:
            self.stdout.write("Findings exist already; nothing to do (use --force to add more).")
            return
        rng = random.Random(seed)
        now = timezone.now()
        accounts = list(Account.objects.filter(detectors__isnull=False).distinct())
        drafts = []
        for _ in range(count):
            account = rng.choice(accounts)
            detector = rng.choice(list(account.detectors.all()))
            name = rng.choice([t for t in TYPES if t in FINDING_TYPES])
            kind = FINDING_TYPES[name]
            at = now - timedelta(days=rng.random() ** 1.6 * 29, minutes=rng.randint(0, 600))
            ip = rng.choice(IPS)
            instance = rng.choice(["i-0a4c7e51b2d3f4a5b", "i-03f9e2d1c0b9a8f7e", "i-0b1d2c3e4f5a6b7c8", "i-07e6d5c4b3a291807"])
            if kind.resource_type == "Instance":
                resource = {"resourceType": "Instance", "instanceDetails": {"instanceId": instance,
                                                                            "instanceType": "t3.medium"}}
                subject = instance
            elif kind.resource_type == "S3Bucket":
                bucket = rng.choice(["acme-prod-logs", "acme-public-assets", "acme-backups"])
                resource = {"resourceType": "S3Bucket", "s3BucketDetails": [{"name": bucket}],
                            "accessKeyDetails": {"accessKeyId": "ASIAEXAMPLEKEY0001", "userName": "deploy"}}
                subject = bucket
            else:
                key = rng.choice(["AKIAEXAMPLEKEY00042", "ASIAEXAMPLEKEY00777"])
                resource = {"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": key,
                                                                              "userName": "ci-deployer"}}
                subject = key
            if kind.action == "NETWORK_CONNECTION":
                action = {"actionType": "NETWORK_CONNECTION", "networkConnectionAction": {
                    "connectionDirection": "INBOUND", "protocol": "TCP", "remoteIpDetails": {"ipAddressV4": ip},
                    "localPortDetails": {"port": 22, "portName": "SSH"}}}
            elif kind.action == "DNS_REQUEST":
                action = {"actionType": "DNS_REQUEST", "dnsRequestAction": {"domain": "pool.minexmr.example"}}
            elif kind.action == "PORT_PROBE":
                action = {"actionType": "PORT_PROBE", "portProbeAction": {"portProbeDetails": [
                    {"localPortDetails": {"port": 3389, "portName": "RDP"}, "remoteIpDetails": {"ipAddressV4": ip}}]}}
            else:
                action = {"actionType": "AWS_API_CALL", "awsApiCallAction": {
                    "api": "ListBuckets", "serviceName": "s3.amazonaws.com", "remoteIpDetails": {"ipAddressV4": ip}}}
            info = {"threatListName": "ProofPoint"} if "MaliciousIP" in name or "C&C" in name else {}
            if kind.varies or "Exfiltration" in name:
                info["unusual"] = {"hoursOfDay": [at.hour], "asnOrgs": ["EXAMPLE-NET"]}
            drafts.append(FindingDraft(
                account_id=account.id, region=detector.region, type=name, severity=kind.severity + rng.choice([0, 0, .5]),
                dedup_key=f"{subject}|{ip}", title=f"{kind.description.split(':')[0].rstrip('.')} ({subject})",
                description=kind.description, resource=resource,
                service={"action": action, "resourceRole": "TARGET", "additionalInfo": info},
                first_seen=at, last_seen=at, detector_id=detector.id,
                evidence_events=[{"eventTime": at.isoformat(), "sourceIPAddress": ip, "eventName": action["actionType"],
                                  "userAgent": "python-requests/2.31"}],
            ))
        result = findings_upsert_many(drafts=drafts)
        self.stdout.write(self.style.SUCCESS(f"{len(result.created)} findings created, {len(result.updated)} updated."))
        self._usage(rng, accounts, now)

    def _usage(self, rng: random.Random, accounts: list, now) -> None:
        """Demo analysed volumes for the usage page (what the ingest pipeline meters from real logs)."""
        from ingest.models import UsageRecord

        if UsageRecord.objects.exists():
            return
        rows = []
        for account in accounts:
            for detector in account.detectors.all():
                scale = rng.uniform(0.5, 2.0)
                for back in range(30):
                    day = (now - timedelta(days=back)).date()
                    wave = 1 + 0.3 * ((back % 7) < 5)
                    rows += [
                        UsageRecord(account=account, region=detector.region, data_source="CLOUD_TRAIL", day=day,
                                    events=int(180_000 * scale * wave * rng.uniform(.8, 1.2))),
                        UsageRecord(account=account, region=detector.region, data_source="S3_LOGS", day=day,
                                    resource="acme-prod-logs", events=int(900_000 * scale * wave * rng.uniform(.8, 1.2))),
                        UsageRecord(account=account, region=detector.region, data_source="FLOW_LOGS", day=day,
                                    bytes=int(6e9 * scale * wave * rng.uniform(.8, 1.2))),
                        UsageRecord(account=account, region=detector.region, data_source="DNS_LOGS", day=day,
                                    bytes=int(4e8 * scale * wave * rng.uniform(.8, 1.2))),
                    ]
        UsageRecord.objects.bulk_create(rows)
        self.stdout.write(self.style.SUCCESS(f"{len(rows)} demo usage records created."))
