"""Backdoor:EC2/Spambot: an instance with no history of mail traffic starts talking SMTP (port 25)
to many remote hosts.

History is kept in ctx.state per instance (the first time it was seen sending to port 25), so a
mail relay that has always talked to its few smart hosts is not flagged when its traffic grows,
while a web server that suddenly delivers to dozens of mail exchangers is.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ingest.rules import FLOW, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import LOCAL, flow, flows
from ingest.rules._net import FLOW_EVIDENCE, is_public_remote, network_finding, oriented, window_fire

SPAMBOT = "Backdoor:EC2/Spambot"


def _smtp(n: int, *, t0: int = 0, hosts: int | None = None) -> list[str]:
    return [flow(LOCAL, f"198.51.{(i % (hosts or n)) // 200}.{(i % (hosts or n)) % 200 + 1}", 40000 + i, 25,
                 t=t0 + i * 20, packets=15, size=3000) for i in range(n)]


CASES = [
    Case("a web server delivers to 40 mail exchangers", flows(_smtp(40)), expect=(SPAMBOT,),
         expect_count={SPAMBOT: 40}),
    Case("a mail relay sends to its two smart hosts", flows(_smtp(200, hosts=2))),
    Case("SMTP submission on 587 is not port 25", flows([r.replace(" 25 6 ", " 587 6 ") for r in _smtp(40)])),
]


@rule(source=FLOW, finding_types=(SPAMBOT,), cases=CASES,
      settings={"min_hosts": Setting(15, "distinct public hosts on port 25 within the window"),
                "window_seconds": Setting(3600, "sliding window")},
      state="per instance: first port-25 activity (its history) and the hosts of the last window", history=True)
def spambot(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    smtp = oriented(frame, ctx).filter((pl.col("dstport") == 25) & (pl.col("protocol") == 6)
                                       & (pl.col("direction") == "OUTBOUND") & pl.col("initiator")
                                       & is_public_remote(frame, ctx))
    if smtp.is_empty():
        return
    smtp = smtp.with_columns(pl.col("resource_key").alias("key"))
    firsts = dict(smtp.group_by("key").agg(pl.col("start").min()).iter_rows())
    history_keys = [f"history|{k}" for k in firsts]
    history = ctx.state_get(history_keys)
    for key, first in firsts.items():
        if f"history|{key}" not in history:
            ctx.state_put(f"history|{key}", int(first))
    window = ctx.setting("window_seconds")
    hits = window_fire(ctx, smtp.select("key", pl.col("start").alias("t"), "remote"), window=window,
                       threshold=ctx.setting("min_hosts"), item="remote")
    for group in group_rows(smtp.filter(pl.col("key").is_in(list(hits))), ["key"], time="start", evidence=FLOW_EVIDENCE):
        latest, hit = group["_latest"], hits[group["key"]]
        known_since = history.get(f"history|{group['key']}")
        if known_since is not None and known_since < int(group["_first"]) - 2 * window:
            continue  # the instance has sent mail long before this burst: history, not a new spambot
        yield network_finding(
            ctx, group, SPAMBOT, dedup=group["key"], role="ACTOR", count=hit.count,
            title=f"{latest['resource_key']} is communicating with remote hosts on port 25.",
            description=(f"{latest['resource_key']}, with no earlier mail traffic, connected to {hit.peak} hosts on "
                         "port 25 within the hour: it may be sending spam."),
        )
