"""DNS queries for names on the built-in feeds and the customer's threat lists.

Black holes, drop points, phishing, drive-by sources, known DGA names (DGADomainRequest.C!DNS),
abused and malicious reputations, and threat entity lists (MaliciousDomainRequest.Custom, with the
list's name). C&C and mining names are in threat_intel.py. A name matches itself and its
subdomains (the matcher's rule). Findings aggregate per (instance, name), except known DGA names,
which come by the hundred from one infection: one finding per instance, latest name shown.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import DNS, Case, Detection, RuleContext, group_rows, rule, threat_service
from ingest.rules._cases import dns
from ingest.rules._net import DNS_EVIDENCE, dns_action, instance_resource, to_dt

BY_CATEGORY = {
    "blackhole": ("Trojan:EC2/BlackholeTraffic!DNS", "is querying a domain name that is redirected to a black hole"),
    "drop_point": ("Trojan:EC2/DropPoint!DNS", "is querying a domain name of a host known to hold stolen data"),
    "phishing": ("Trojan:EC2/PhishingDomainRequest!DNS", "is querying a domain involved in phishing attacks"),
    "drive_by": ("Trojan:EC2/DriveBySourceTraffic!DNS", "is querying a domain known for drive-by downloads"),
    "dga": ("Trojan:EC2/DGADomainRequest.C!DNS", "is querying known algorithmically generated domains"),
    "abused": ("Impact:EC2/AbusedDomainRequest.Reputation", "is querying a low-reputation domain of an abused service"),
    "malicious": ("Impact:EC2/MaliciousDomainRequest.Reputation",
                  "is querying a low-reputation domain associated with malicious activity"),
    "custom": ("Impact:EC2/MaliciousDomainRequest.Custom", "is querying a domain on your threat list"),
    "crypto_reputation": ("Impact:EC2/BitcoinDomainRequest.Reputation",
                          "is querying a low-reputation domain associated with cryptocurrency"),
    "suspicious": ("Impact:EC2/SuspiciousDomainRequest.Reputation",
                   "is querying a suspicious domain with a low reputation score"),
}
PER_INSTANCE = {"dga"}

CASES = [
    Case("AWS tester: black hole", [dns("guarddutyblackholeactivity.com")], expect=("Trojan:EC2/BlackholeTraffic!DNS",)),
    Case("AWS tester: drop point", [dns("guarddutydroppointactivity.com")], expect=("Trojan:EC2/DropPoint!DNS",)),
    Case("AWS tester: phishing", [dns("www.guarddutyphishingactivity.com")],
         expect=("Trojan:EC2/PhishingDomainRequest!DNS",)),
    Case("AWS tester: drive-by", [dns("guarddutydrivebyactivity.com")], expect=("Trojan:EC2/DriveBySourceTraffic!DNS",)),
    Case("known DGA names of two families: one finding", [dns("guarddutydgaactivity.com"), dns("guarddutydgaactivity.com"),
                                                          dns("pbmwtovcjeyvnauw.in", rcode="NXDOMAIN")],
         expect=("Trojan:EC2/DGADomainRequest.C!DNS",), expect_count={"Trojan:EC2/DGADomainRequest.C!DNS": 3}),
    Case("AWS tester: abused and malicious reputations", [dns("abused-rep.guarddutyc2activityb.com"),
                                                          dns("malicious-rep.guarddutyc2activityb.com")],
         expect=("Impact:EC2/AbusedDomainRequest.Reputation", "Impact:EC2/MaliciousDomainRequest.Reputation")),
    Case("AWS tester: crypto and suspicious reputations, only their own types",
         [dns("crypto-rep.guarddutyc2activityb.com"), dns("suspicious-rep.guarddutyc2activityb.com")],
         expect=("Impact:EC2/BitcoinDomainRequest.Reputation", "Impact:EC2/SuspiciousDomainRequest.Reputation")),
    Case("a name on the customer's entity list", [dns("cdn.evil-updates.example")], threat_list=("evil-updates.example",),
         threat_list_name="PartnerFeed", expect=("Impact:EC2/MaliciousDomainRequest.Custom",)),
    Case("ordinary names", [dns("www.amazon.com"), dns("d1a2b3c4.cloudfront.net"), dns("github.com")]),
    Case("a look-alike of a listed name", [dns("guarddutyphishingactivity.com.example.org"),
                                           dns("notguarddutyblackholeactivity.com")]),
]


@rule(source=DNS, finding_types=tuple(t for t, _ in BY_CATEGORY.values()), cases=CASES)
def listed_domains(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    for category, (finding_type, what) in BY_CATEGORY.items():
        listed = {n: tuple(h for h in hits if h.category == category) for n, hits in ctx.domain_hits.items()}
        listed = {n: hits for n, hits in listed.items() if hits}
        if not listed:
            continue
        matches = frame.filter(pl.col("query_name").is_in(list(listed))).with_columns(
            pl.coalesce("instance_id", "srcaddr").alias("resource_key"))
        by = ["resource_key"] if category in PER_INSTANCE else ["resource_key", "query_name"]
        for group in group_rows(matches, by, time="query_time", evidence=DNS_EVIDENCE):
            latest = group["_latest"]
            domain = latest["query_name"]
            hits = listed[domain]
            resource, name = instance_resource(ctx, latest)
            dedup = group["resource_key"] if category in PER_INSTANCE else f"{group['resource_key']}|{domain}"
            yield Detection(
                type=finding_type, dedup_key=dedup, title=f"EC2 instance {name} {what}.",
                description=f"EC2 instance {name} {what}: {domain} (list {hits[0].list_name}).",
                first_seen=to_dt(group["_first"]), last_seen=to_dt(group["_last"]), count=group["_count"],
                resource=resource, evidence=group["_evidence"],
                service={"resourceRole": "ACTOR", "action": dns_action(latest, domain, ctx), **threat_service(hits)},
            )
