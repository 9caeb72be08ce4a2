"""UnauthorizedAccess:EC2/MetadataDNSRebind: a name that resolves to the instance metadata service.

DNS rebinding lets a web page or an SSRF-prone application reach 169.254.169.254 (or IPv6
fd00:ec2::254) under a harmless-looking name. AWS's own names for the service (`instance-data`,
`*.ec2.internal` and other `.internal` names, setting `allowed_suffixes`) legitimately resolve there.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import DNS, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import dns
from ingest.rules._net import DNS_EVIDENCE, dns_action, instance_resource, to_dt

REBIND = "UnauthorizedAccess:EC2/MetadataDNSRebind"
IMDS = r'"Rdata"\s*:\s*"(169\.254\.169\.254|fd00:ec2::254)"'

CASES = [
    Case("a rebinding name answers with the metadata address", [dns("7f000001.a9fea9fe.rbndr.us", answers=["169.254.169.254"])],
         expect=(REBIND,)),
    Case("IPv6 metadata endpoint", [dns("imds6.attacker.example", answers=["fd00:ec2::254"], qtype="AAAA")],
         expect=(REBIND,)),
    Case("AWS's own instance-data names", [dns("instance-data", answers=["169.254.169.254"]),
                                           dns("instance-data.ec2.internal", answers=["169.254.169.254"])]),
    Case("a neighbouring link-local address", [dns("time.attacker.example", answers=["169.254.169.123"])]),
]


@rule(source=DNS, finding_types=(REBIND,), cases=CASES,
      settings={"allowed_suffixes": Setting(["instance-data", ".internal"],
                                            "names (or suffixes) AWS itself resolves to the metadata service")})
def metadata_rebind(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    allowed = ctx.setting("allowed_suffixes")
    hits = frame.filter(pl.col("answers").str.contains(IMDS).fill_null(False)
                        & ~pl.any_horizontal([pl.col("query_name").str.ends_with(s) for s in allowed]))
    hits = hits.with_columns(pl.coalesce("instance_id", "srcaddr").alias("resource_key"))
    for group in group_rows(hits, ["resource_key", "query_name"], time="query_time", evidence=[*DNS_EVIDENCE, "answers"]):
        latest = group["_latest"]
        resource, name = instance_resource(ctx, latest)
        domain = group["query_name"]
        yield Detection(
            type=REBIND, dedup_key=f"{group['resource_key']}|{domain}",
            title=f"EC2 instance {name} is querying a domain name that resolves to the EC2 metadata IP address.",
            description=(f"{domain}, queried by {name}, resolves to the instance metadata service: a DNS rebinding "
                         "attack may be trying to read the instance's credentials through it."),
            first_seen=to_dt(group["_first"]), last_seen=to_dt(group["_last"]), count=group["_count"],
            resource=resource, evidence=group["_evidence"],
            service={"resourceRole": "ACTOR", "action": dns_action(latest, domain, ctx)},
        )
