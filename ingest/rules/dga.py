"""Trojan:EC2/DGADomainRequest.B: an instance queries many algorithmically generated names, most of
which do not exist.

The model is a character trigram language model of domain labels (interpolated with bigram and
unigram estimates), trained at import on data shipped in ingest/rules/data/: maltrail's whitelist of
popular domains (MIT) and a sample of English words (web2, public domain), see data/SOURCES.md.
A name is scored by the mean log2-probability per character of its registrable label (the label
left of the public suffix: `d1a2b3c4.cloudfront.net` is judged as `cloudfront`). One odd name
proves nothing; DGA malware tries dozens, many of which were never registered, so the rule
fires when an instance queries `min_names` distinct low-likelihood names within the window and
at least `min_nxdomain_ratio` of them answered NXDOMAIN (many DGA names are registered or
sinkholed: in Stratosphere's Simda capture only 45% fail). Scoring is vectorised: each distinct
label is cut into trigrams, joined against the model's table and averaged.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

import polars as pl

from ingest.rules import DNS, Case, Detection, RuleContext, Setting, group_rows, rule
from ingest.rules._cases import dns
from ingest.rules._net import DNS_EVIDENCE, dns_action, instance_resource, registrable_expr, to_dt, window_fire

DGA = "Trojan:EC2/DGADomainRequest.B"
DATA = Path(__file__).resolve().parent / "data"
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"
BOUNDARY, END, OTHER = "^", "$", "?"
WEIGHTS = (0.6, 0.3, 0.1)  # trigram, bigram, unigram interpolation
IGNORED_TLDS = ("internal", "local", "arpa", "localdomain", "lan", "home", "corp")


def _training_labels() -> list[str]:
    labels: list[str] = []
    for name, weight in (("popular_domains.txt", 3), ("english_words.txt", 1)):
        for line in (DATA / name).read_text().splitlines():
            if line and not line.startswith("#"):
                parts = line.split(".")
                label = parts[-2] if len(parts) >= 2 else parts[0]
                labels.extend([label] * weight)
    return labels


@cache
def model_table() -> pl.DataFrame:
    """log2 P(c | a b) for every trigram over the alphabet, the boundary marks and an 'other' char,
    counted and interpolated with polars (a Python loop over 64k trigrams took seconds)."""
    grams = _trigrams(pl.DataFrame({"label": _training_labels()}))["_gram"]
    seen = pl.DataFrame({"a": grams.str.slice(0, 1), "b": grams.str.slice(1, 1), "c": grams.str.slice(2, 1)})
    c3 = seen.group_by("a", "b", "c").len("n3")
    ctx2 = seen.group_by("a", "b").len("m2")
    c2 = seen.group_by("b", "c").len("n2")
    ctx1 = seen.group_by("b").len("m1")
    c1 = seen.group_by("c").len("n1")
    symbols = list(ALPHABET + BOUNDARY + END + OTHER)
    full = (pl.DataFrame({"a": symbols}).join(pl.DataFrame({"b": symbols}), how="cross")
            .join(pl.DataFrame({"c": list(ALPHABET + END + OTHER)}), how="cross"))
    w3, w2, w1 = WEIGHTS
    full = (full.join(c3, on=["a", "b", "c"], how="left").join(ctx2, on=["a", "b"], how="left")
            .join(c2, on=["b", "c"], how="left").join(ctx1, on="b", how="left").join(c1, on="c", how="left")
            .fill_null(0))
    p1 = (pl.col("n1") + 1) / (len(grams) + len(symbols))
    p2 = pl.when(pl.col("m1") > 0).then(pl.col("n2") / pl.col("m1")).otherwise(0.0)
    p3 = pl.when(pl.col("m2") > 0).then(pl.col("n3") / pl.col("m2")).otherwise(0.0)
    return full.select((pl.col("a") + pl.col("b") + pl.col("c")).alias("_gram"),
                       (w3 * p3 + w2 * p2 + w1 * p1).log(2).alias("_logp"))


def _trigrams(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per trigram of each padded label (column `label` in, `_gram` out)."""
    padded = pl.lit(BOUNDARY * 2) + pl.col("label").str.replace_all(r"[^a-z0-9-]", OTHER) + pl.lit(END)
    return (frame.with_columns(padded.alias("_s"))
            .with_columns(pl.int_ranges(0, pl.col("_s").str.len_chars() - 2).alias("_i"))
            .explode("_i")
            .with_columns(pl.col("_s").str.slice(pl.col("_i"), 3).alias("_gram")))


_SCORES: dict[str, float] = {}
_SCORES_MAX = 500_000


def score_labels(labels: pl.Series) -> pl.DataFrame:
    """Mean log2-probability per character of each distinct label (columns label, score). Scores
    are remembered per process: resolver logs repeat the same names all day."""
    values = labels.unique().drop_nulls().to_list()
    missing = [v for v in values if v not in _SCORES]
    if missing:
        scored = (_trigrams(pl.DataFrame({"label": missing})).join(model_table(), on="_gram", how="left")
                  .group_by("label").agg(pl.col("_logp").fill_null(-12.0).mean().alias("score")))
        if len(_SCORES) > _SCORES_MAX:
            _SCORES.clear()
        _SCORES.update(zip(scored["label"].to_list(), scored["score"].to_list(), strict=True))
    return pl.DataFrame({"label": values, "score": [_SCORES[v] for v in values]},
                        schema={"label": pl.String, "score": pl.Float64})


def label_expr() -> pl.Expr:
    return registrable_expr().str.split(".").list.first()


CASES = [
    Case("Simda-like names, mostly NXDOMAIN", [
        dns(n, t=i * 20, rcode="NXDOMAIN" if i % 4 else "NOERROR", answers=None if i % 4 else ["203.0.113.80"])
        for i, n in enumerate(["qexylup.com", "vojyqem.com", "gahyqah.com", "lyvejyb.com", "puzylyp.com", "vocyzit.com",
                               "jetyfeq.com", "gadyniw.com", "qekyqop.com", "lymylor.com", "vowyzuk.com", "galykes.com",
                               "pufymob.com", "qetyfuw.com", "lyxyxit.com", "volykiv.com", "pumyxiw.com", "jeqyfyg.com"])],
         expect=(DGA,), expect_count={DGA: 18}),
    Case("random hex-like names all NXDOMAIN", [
        dns(f"{h}.net", t=i * 10, rcode="NXDOMAIN") for i, h in enumerate(
            ["xkq3v9zt1b", "p0wz8rmq2x", "jz7xkq1v0c", "q9x2zkvm8p", "zv1q8xkr3j", "k2xq9zv7wm", "m8zq1xv0kt",
             "v3kx9qz2pd", "x0zq7vk1rn", "t9qx2zv8kb", "b1xz8qv3km", "w7qz0xk2vn"])], expect=(DGA,)),
    Case("each odd name retried three times within a minute: every query counts", [
        dns(f"{h}.net", t=i, rcode="NXDOMAIN") for i, h in enumerate(
            ["xkq3v9zt1b", "p0wz8rmq2x", "jz7xkq1v0c", "q9x2zkvm8p", "zv1q8xkr3j", "k2xq9zv7wm", "m8zq1xv0kt",
             "v3kx9qz2pd", "x0zq7vk1rn", "t9qx2zv8kb", "b1xz8qv3km", "w7qz0xk2vn"] * 3)],
         expect=(DGA,), expect_count={DGA: 36}),
    Case("CDN and cloud names resolve and read as words", [
        dns(n, t=i) for i, n in enumerate(["d1a2b3c4.cloudfront.net", "d3f9k2m1x0q7.cloudfront.net",
                                           "vpce-0a1b2c3d4e5f67890-abcdefgh.s3.us-east-1.vpce.amazonaws.com",
                                           "e1234.dscb.akamaiedge.net", "ip-10-0-1-20.ec2.internal",
                                           "internal-my-application-load-balancer-1234567890.us-east-1.elb.amazonaws.com",
                                           "github.com", "pypi.org", "stackoverflow.com", "kubernetes.io"])]),
    Case("typos and search-domain expansions answered NXDOMAIN", [
        dns(n, t=i, rcode="NXDOMAIN") for i, n in enumerate(["githbu.com", "gogle.com", "api.svc.cluster.local",
                                                             "db.ec2.internal", "wpad.corp", "pypi.ogr"])]),
    Case("a dozen odd names that all resolve (a link checker)", [
        dns(f"{h}.com", t=i, answers=["198.51.100.9"]) for i, h in enumerate(
            ["xkq3v9zt1b", "p0wz8rmq2x", "jz7xkq1v0c", "q9x2zkvm8p", "zv1q8xkr3j", "k2xq9zv7wm", "m8zq1xv0kt",
             "v3kx9qz2pd", "x0zq7vk1rn", "t9qx2zv8kb", "b1xz8qv3km", "w7qz0xk2vn"])]),
]


@rule(source=DNS, finding_types=(DGA,), cases=CASES,
      settings={"max_score": Setting(-4.0, "labels whose mean log2-probability per character is below this are odd"),
                "min_label_length": Setting(6, "shorter labels are too short to judge"),
                "min_names": Setting(10, "distinct odd names of one instance within the window"),
                "min_nxdomain_ratio": Setting(0.25, "share of those names that must have answered NXDOMAIN (Simda: 45%)"),
                "window_seconds": Setting(3600, "sliding window")},
      state="per instance: the first time each odd name (and whether it was NXDOMAIN) was seen within the window")
def dga_heuristic(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    # Names repeat all day: derive domain and label once per distinct name, then join back.
    distinct = frame.select("query_name").unique().with_columns(registrable_expr().alias("domain")).with_columns(
        pl.col("domain").str.split(".").list.first().alias("label"),
        pl.col("domain").str.split(".").list.last().alias("tld"))
    distinct = distinct.filter((pl.col("label").str.len_chars() >= ctx.setting("min_label_length"))
                               & ~pl.col("tld").is_in(IGNORED_TLDS) & (pl.col("domain").str.count_matches(r"\.") >= 1))
    if distinct.is_empty():
        return
    scores = score_labels(distinct["label"]).filter(pl.col("score") < ctx.setting("max_score"))
    odd_names = distinct.join(scores, on="label").drop("tld")
    key = pl.coalesce("instance_id", "srcaddr").alias("key")
    item = pl.concat_str((pl.col("rcode") == "NXDOMAIN").cast(pl.Int8).cast(pl.String), pl.col("domain"),
                         separator="|").alias("item")
    # Popular names can score low too (most of a frame's rows): the window needs each (instance,
    # name) pair's first time and records per minute, so it reads those, from five columns; the
    # rows themselves are read again only for the instances that fire.
    pairs = (frame.select("query_name", "instance_id", "srcaddr", "rcode", pl.col("query_time").dt.epoch("s").alias("t"))
             .join(odd_names.select("query_name", "domain"), on="query_name")
             .group_by("instance_id", "srcaddr", "rcode", "domain", (pl.col("t") // 60 * 60).alias("_m"))
             .agg(pl.col("t").min(), pl.len().alias("records")))
    if pairs.is_empty():
        return
    hits = window_fire(ctx, pairs.select(key, item, "t", "records"), records="records",
                       window=ctx.setting("window_seconds"), threshold=ctx.setting("min_names"), item="item")
    if not hits:
        return
    odd = frame.join(odd_names, on="query_name").with_columns(key, item).filter(pl.col("key").is_in(list(hits)))
    for group in group_rows(odd, ["key"], time="query_time",
                            evidence=[*DNS_EVIDENCE, "score"]):
        hit = hits[group["key"]]
        domains = {i.split("|", 1)[1] for i in hit.items}
        nx = {i.split("|", 1)[1] for i in hit.items if i.startswith("1|")}
        if len(nx) / max(len(domains), 1) < ctx.setting("min_nxdomain_ratio"):
            continue
        latest = group["_latest"]
        resource, name = instance_resource(ctx, latest)
        yield Detection(
            type=DGA, dedup_key=group["key"],
            title=f"EC2 instance {name} is querying algorithmically generated domains.",
            description=(f"{name} queried {len(domains)} distinct domain names that do not read like names people "
                         f"register ({len(nx)} of them do not exist), e.g. {', '.join(sorted(domains)[:3])}: "
                         "malware generates such names to find its command and control server."),
            first_seen=to_dt(group["_first"]), last_seen=to_dt(group["_last"]), count=hit.count,
            resource=resource, evidence=group["_evidence"],
            service={"resourceRole": "ACTOR", "action": dns_action(latest, latest["query_name"], ctx),
                     "additionalInfo": {"domainsQueried": len(domains), "nxdomain": len(nx),
                                        "domainsSample": sorted(domains)[:10]}},
        )
