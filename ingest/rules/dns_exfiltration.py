"""Trojan:EC2/DNSDataExfiltration: data encoded into DNS names (DNS tunnelling).

Tunnels put encoded data in long labels under a domain they control and send many distinct names.
A name is suspicious when its subdomain part is long (`min_subdomain_length`), its longest label is
long (`min_label_length`), and that label reads like encoding rather than words (the character
trigram model of dga.py scores it below `max_score`; base32/64 and hex all do). Long but ordinary
names (S3 buckets, load balancers, VPC endpoints) are few per domain, so the rule fires only when one
instance sends `min_names` distinct suspicious names under one registrable domain within the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from ingest.rules import DNS, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import dns
from ingest.rules._net import DNS_EVIDENCE, dns_action, instance_resource, registrable_expr, to_dt, window_fire
from ingest.rules.dga import score_labels

EXFIL = "Trojan:EC2/DNSDataExfiltration"
_HEX = "0123456789abcdef"


def _encoded(i: int, n: int = 60) -> str:
    # Deterministic hex "ciphertext" for the cases (what dnscat2-like tools send).
    x, out = i * 2654435761 + 12345, []
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(_HEX[x >> 60])
    return "".join(out)


CASES = [
    Case("hex-encoded chunks under one domain", [dns(f"{_encoded(i)}.{_encoded(i + 99, 20)}.t.exfil-relay.net", t=i)
                                                  for i in range(30)], expect=(EXFIL,), expect_count={EXFIL: 30}),
    Case("the GuardDuty tester's own queries", [dns(line.strip(), t=i) for i, line in enumerate(
        (Path(__file__).resolve().parent / "data" / "tester_exfil_sample.txt").read_text().splitlines()[2:])],
         expect=(EXFIL,)),
    Case("long but normal cloud names", [dns(n, t=i) for i, n in enumerate([
        "my-company-application-logs-123456789012-us-east-1.s3.us-east-1.amazonaws.com",
        "internal-my-application-load-balancer-1234567890.us-east-1.elb.amazonaws.com",
        "vpce-0a1b2c3d4e5f67890-abcdefgh.s3.us-east-1.vpce.amazonaws.com",
        "_3f9a1b2c4d5e6f708192a3b4c5d6e7f8.acm-validations.aws",
        "d1a2b3c4.cloudfront.net"] * 8)]),
    Case("a handful of encoded names is not a tunnel", [dns(f"{_encoded(i)}.exfil-relay.net", t=i) for i in range(5)]),
    Case("many distinct short names (a DNSBL lookup service)", [
        dns(f"{i % 250}.{i // 250}.113.203.zen.spamhaus.org", t=i) for i in range(300)]),
]


@rule(source=DNS, finding_types=(EXFIL,), cases=CASES,
      settings={"min_subdomain_length": Setting(40, "characters left of the registrable domain"),
                "min_label_length": Setting(24, "characters of the longest label"),
                "max_score": Setting(-3.6, "trigram score (dga.py) below which a label reads as encoding"),
                "min_names": Setting(20, "distinct suspicious names under one domain within the window"),
                "window_seconds": Setting(3600, "sliding window")},
      state="per (instance, domain): the first time each suspicious name was seen within the window")
def dns_exfiltration(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    # Cheap length test first: the registrable domain is at least 4 characters ("a.io").
    names = frame.filter(pl.col("query_name").str.len_chars() >= ctx.setting("min_subdomain_length") + 5)
    names = names.with_columns(registrable_expr().alias("domain"))
    names = names.with_columns(
        pl.col("query_name").str.slice(0, pl.col("query_name").str.len_chars() - pl.col("domain").str.len_chars() - 1)
        .alias("sub")).filter(pl.col("sub").str.len_chars() >= ctx.setting("min_subdomain_length"))
    if names.is_empty():
        return
    names = names.with_columns(pl.col("sub").str.split(".").list.eval(
        pl.element().sort_by(pl.element().str.len_chars(), descending=True)).list.first().alias("label"))
    names = names.filter(pl.col("label").str.len_chars() >= ctx.setting("min_label_length"))
    scores = score_labels(names["label"]).filter(pl.col("score") < ctx.setting("max_score"))
    odd = names.join(scores, on="label").with_columns(
        pl.concat_str(pl.coalesce("instance_id", "srcaddr"), "domain", separator="|").alias("key"))
    if odd.is_empty():
        return
    hits = window_fire(ctx, odd.select("key", pl.col("query_time").dt.epoch("s").alias("t"), "query_name"),
                       window=ctx.setting("window_seconds"), threshold=ctx.setting("min_names"), item="query_name",
                       cap=500)
    for group in group_rows(odd.filter(pl.col("key").is_in(list(hits))), ["key"], time="query_time",
                            evidence=DNS_EVIDENCE):
        hit, latest = hits[group["key"]], group["_latest"]
        resource, name = instance_resource(ctx, latest)
        domain = latest["domain"]
        yield Detection(
            type=EXFIL, dedup_key=group["key"],
            title=f"EC2 instance {name} is attempting to query domain names that resemble exfiltrated data.",
            description=(f"{name} sent {hit.peak} distinct long, encoded-looking names under {domain} within "
                         f"{ctx.setting('window_seconds') // 60} minutes: data may be leaving through DNS."),
            first_seen=to_dt(group["_first"]), last_seen=to_dt(group["_last"]), count=hit.count,
            resource=resource, evidence=group["_evidence"],
            service={"resourceRole": "ACTOR", "action": dns_action(latest, domain, ctx)},
        )
