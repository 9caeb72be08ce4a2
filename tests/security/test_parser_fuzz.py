"""Property-based tests for every parser that reads attacker-controlled input.

The property is the same everywhere: any input gives a result or the parser's own clear error
(UnreadableObject, ListFormatError, CriteriaError), never another exception. Inputs are both raw
bytes and structured data shaped like the format (so the fuzzer gets past the first sniff), with
the hostile corpus mixed into every string.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findings.criteria import FIELDS, CriteriaError, criteria_match, criteria_q, sort_order, validate
from ingest.parsers import ParseStats, UnreadableObject
from ingest.parsers.flow import KNOWN_FIELDS, V2_FIELDS
from ingest.pipeline import Pipeline
from ingest.rules import CLOUDTRAIL, DNS, FLOW
from intel.parsers import FORMATS, ListFormatError, parse_list
from tests.security.hostile import HOSTILE_SMALL

EXTERNAL = Path("/work/shared/data/external")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_matcher = None


def matcher():
    global _matcher
    if _matcher is None:
        from intel.matching import matcher_from_files

        _matcher = matcher_from_files()
    return _matcher


texts = st.one_of(st.text(max_size=60), st.sampled_from(HOSTILE_SMALL))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), texts)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                           max_leaves=12)


def run_pipeline(kind: str, data: bytes, *, compress: bool) -> None:
    """Feed one object through the real parse + rules path; only UnreadableObject may escape."""
    body = gzip.compress(data, compresslevel=1) if compress else data
    try:
        result = Pipeline(matcher=matcher()).process(kind, io.BytesIO(body), aws_account_id="123456789012",
                                                     region="us-east-1")
    except UnreadableObject as exc:
        assert exc.reason
        return
    assert result.stats.records >= 0 and result.stats.malformed >= 0
    assert len(result.stats.malformed_samples) <= 5


# --- CloudTrail ----------------------------------------------------------------------------------

CT_FIELDS = ["eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent", "errorCode",
             "errorMessage", "eventID", "eventType", "eventCategory", "managementEvent", "readOnly",
             "recipientAccountId", "userIdentity", "requestParameters", "responseElements", "additionalEventData"]
ct_event = st.fixed_dictionaries({}, optional={name: json_values for name in CT_FIELDS}) | st.fixed_dictionaries(
    {"eventVersion": st.just("1.08"), "eventTime": st.sampled_from(["2024-01-02T03:04:05Z", "2024-13-99T99:99:99Z", ""]),
     "eventName": texts, "sourceIPAddress": st.one_of(texts, st.ip_addresses().map(str)),
     "userIdentity": st.fixed_dictionaries({}, optional={"type": texts, "arn": texts, "accessKeyId": texts,
                                                         "sessionContext": json_values}),
     "requestParameters": json_values, "userAgent": texts})


@FUZZ
@given(records=st.lists(ct_event, max_size=6), wrapper=st.sampled_from(["envelope", "array", "lines"]),
       compress=st.booleans())
def test_cloudtrail_structured(records, wrapper, compress):
    if wrapper == "envelope":
        data = json.dumps({"Records": records}).encode()
    elif wrapper == "array":
        data = json.dumps(records).encode()
    else:
        data = b"\n".join(json.dumps(r).encode() for r in records)
    run_pipeline(CLOUDTRAIL, data, compress=compress)


@FUZZ
@given(name=st.sampled_from(["RunInstances", "CreateNetworkInterface"]), response=json_values | st.fixed_dictionaries(
    {"instancesSet": st.fixed_dictionaries({"items": st.lists(json_values | st.fixed_dictionaries(
        {"instanceId": json_values | st.just("i-0123"), "networkInterfaceSet": json_values, "tagSet": json_values,
         "placement": json_values}), max_size=3)})}) | st.fixed_dictionaries(
    {"networkInterface": st.fixed_dictionaries({"attachment": json_values, "networkInterfaceId": json_values})}))
def test_cloudtrail_inventory_learning(name, response):
    """RunInstances/CreateNetworkInterface responses teach the inventory: any shape is survived."""
    record = {"eventVersion": "1.08", "eventTime": "2024-01-02T03:04:05Z", "eventName": name,
              "eventSource": "ec2.amazonaws.com", "responseElements": response}
    run_pipeline(CLOUDTRAIL, json.dumps({"Records": [record]}).encode(), compress=False)


@FUZZ
@given(data=st.binary(max_size=2000), compress=st.booleans())
def test_cloudtrail_bytes(data, compress):
    run_pipeline(CLOUDTRAIL, data, compress=compress)


@FUZZ
@given(data=st.data())
def test_cloudtrail_real_sample_mutated(data):
    sample = sorted((EXTERNAL / "invictus-ir-aws-dataset/CloudTrail").glob("*.json"))[0].read_bytes()[:20000]
    start = data.draw(st.integers(0, len(sample) - 1))
    end = data.draw(st.integers(start, len(sample)))
    insert = data.draw(st.binary(max_size=40) | st.sampled_from(HOSTILE_SMALL).map(str.encode))
    run_pipeline(CLOUDTRAIL, sample[:start] + insert + sample[end:], compress=data.draw(st.booleans()))


def test_cloudtrail_streaming_path_with_small_batches():
    """The streaming splitter (AWS's layout, larger than a batch) on hostile record contents."""
    from ingest.parsers.cloudtrail import iter_cloudtrail

    records = [{"eventVersion": "1.08", "eventTime": "2024-01-02T03:04:05Z", "eventName": "GetObject",
                "userAgent": s, "requestParameters": {"k": s}} for s in HOSTILE_SMALL]
    data = json.dumps({"Records": records}, separators=(",", ":")).encode()
    stats = ParseStats()
    frames = list(iter_cloudtrail(io.BytesIO(gzip.compress(data)), stats, batch_bytes=256))
    assert sum(f.height for f in frames) == len(records) == stats.records


# --- VPC flow logs ---------------------------------------------------------------------------------

token = st.one_of(st.integers(-2**70, 2**70).map(str), st.sampled_from(["-", "ACCEPT", "REJECT", "OK", "NODATA",
                                                                         "SKIPDATA", "10.0.0.1", "::1", "eni-1"]),
                  st.text(alphabet=st.characters(blacklist_characters=" \n\r", blacklist_categories=("Cs",)), min_size=1,
                          max_size=12))


@FUZZ
@given(header=st.one_of(st.just(V2_FIELDS), st.lists(st.sampled_from(sorted(KNOWN_FIELDS)), min_size=1, max_size=20),
                        st.just(None)),
       rows=st.lists(st.lists(token, min_size=0, max_size=25), max_size=8), compress=st.booleans())
def test_flow_structured(header, rows, compress):
    lines = ([" ".join(header)] if header else []) + [" ".join(r) for r in rows]
    run_pipeline(FLOW, "\n".join(lines).encode(), compress=compress)


@FUZZ
@given(data=st.binary(max_size=2000), compress=st.booleans())
def test_flow_bytes(data, compress):
    run_pipeline(FLOW, data, compress=compress)


# --- Route 53 Resolver query logs ------------------------------------------------------------------

DNS_FIELDS = ["version", "account_id", "region", "vpc_id", "query_timestamp", "query_name", "query_type",
              "query_class", "rcode", "answers", "srcaddr", "srcport", "transport", "srcids"]
dns_query = st.fixed_dictionaries({}, optional={name: json_values for name in DNS_FIELDS}) | st.fixed_dictionaries(
    {"query_timestamp": st.sampled_from(["2024-01-02T03:04:05Z", "not a time"]), "query_name": texts,
     "srcaddr": texts, "srcids": st.fixed_dictionaries({}, optional={"instance": texts}), "answers": json_values})


@FUZZ
@given(queries=st.lists(dns_query, max_size=6), junk=st.lists(st.binary(max_size=30), max_size=2),
       compress=st.booleans())
def test_dns_structured(queries, junk, compress):
    lines = [json.dumps(q).encode() for q in queries] + junk
    run_pipeline(DNS, b"\n".join(lines), compress=compress)


@FUZZ
@given(data=st.binary(max_size=2000), compress=st.booleans())
def test_dns_bytes(data, compress):
    run_pipeline(DNS, data, compress=compress)


# --- the six threat-list formats -----------------------------------------------------------------------

def parse_or_refuse(data: bytes | str, fmt: str) -> None:
    try:
        parsed = parse_list(data, fmt)
    except ListFormatError as exc:
        assert str(exc)
        return
    assert parsed.rejected_total >= len(parsed.rejected)
    assert len(parsed.rejected) <= 100


list_line = st.one_of(texts, st.ip_addresses().map(str), st.ip_addresses(v=4).map(lambda a: f"{a}/{a.max_prefixlen}"),
                      st.from_regex(r"\A[a-z0-9*.-]{1,30}\Z"))


@FUZZ
@given(fmt=st.sampled_from(FORMATS), data=st.binary(max_size=3000))
def test_lists_bytes(fmt, data):
    parse_or_refuse(data, fmt)


@FUZZ
@given(fmt=st.sampled_from(FORMATS), lines=st.lists(st.lists(list_line, min_size=1, max_size=6), max_size=10),
       sep=st.sampled_from([",", "\t", " ", ";", "|"]), header=st.booleans())
def test_lists_line_shaped(fmt, lines, sep, header):
    rows = [sep.join(cells) for cells in lines]
    if header:
        rows.insert(0, sep.join(["Indicator type", "Indicator", "Description", "type", "value", "domain", "ip"]))
    parse_or_refuse("\n".join(rows), fmt)


stix_value = st.one_of(texts, st.ip_addresses().map(str), json_values)


@FUZZ
@given(objects=st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["indicator", "ipv4-addr", "domain-name", "ipv6-addr", "bundle", "x"])},
    optional={"pattern": st.one_of(texts, st.builds("[ipv4-addr:value = '{}']".format, stix_value),
                                   st.builds("[domain-name:value = '{}' OR ipv4-addr:value = '{}']".format, texts, texts)),
              "value": stix_value, "spec_version": st.sampled_from(["2.0", "2.1", "9"]), "pattern_type": texts,
              "id": texts}), max_size=6), as_bundle=st.booleans())
def test_stix2_json(objects, as_bundle):
    doc = {"type": "bundle", "id": "bundle--1", "objects": objects} if as_bundle else objects
    parse_or_refuse(json.dumps(doc), "STIX")


@FUZZ
@given(values=st.lists(stix_value.map(str), max_size=5), kind=st.sampled_from(["AddressObj:AddressObjectType",
                                                                            "DomainNameObj:DomainNameObjectType", "x"]))
def test_stix1_xml(values, kind):
    from xml.sax.saxutils import escape

    body = "".join(
        f'<cybox:Observable><cybox:Object><cybox:Properties xsi:type="{kind}">'
        f'<AddressObj:Address_Value condition="InclusiveBetween">{escape(v)}</AddressObj:Address_Value>'
        f"</cybox:Properties></cybox:Object></cybox:Observable>" for v in values)
    doc = ('<?xml version="1.0"?><stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1" '
           'xmlns:cybox="http://cybox.mitre.org/cybox-2" xmlns:AddressObj="http://cybox.mitre.org/objects#AddressObject-2" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><stix:Observables>'
           f"{body}</stix:Observables></stix:STIX_Package>")
    parse_or_refuse(doc, "STIX")


def test_stix1_entity_expansion_refused():
    """Billion laughs: expat's amplification limit refuses it as a format error, quickly."""
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    doc = f'<?xml version="1.0"?><!DOCTYPE stix [{entities}]><stix:STIX_Package xmlns:stix="x">&a9;</stix:STIX_Package>'
    with pytest.raises(ListFormatError):
        parse_list(doc.encode(), "STIX")


def test_stix1_external_entity_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("203.0.113.77")
    doc = (f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file://{secret}">]>'
           '<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1">&xxe;</stix:STIX_Package>')
    try:
        parsed = parse_list(doc.encode(), "STIX")
    except ListFormatError:
        return
    assert not parsed.ipv4


def test_list_gzip_bomb_refused():
    """A threat list that decompresses past 35 MB is refused; only 35 MB + 1 byte is ever inflated."""
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as gz:
        zeros = b"0" * (1 << 20)
        for _ in range(64):
            gz.write(zeros)
    assert raw.tell() < 200_000
    with pytest.raises(ListFormatError, match="larger than"):
        parse_list(raw.getvalue(), "TXT")


# --- FindingCriteria ---------------------------------------------------------------------------------

OPERATORS = ["Eq", "Equals", "Neq", "NotEquals", "Gt", "GreaterThan", "Gte", "GreaterThanOrEqual", "Lt", "LessThan",
             "Lte", "LessThanOrEqual", "Matches", "NotMatches", "Bogus"]
criterion_value = st.one_of(json_values, st.lists(scalars, max_size=4), st.integers(-2**70, 2**70))
criteria = st.one_of(
    json_values,
    st.fixed_dictionaries({"Criterion": st.dictionaries(
        st.one_of(st.sampled_from(sorted(FIELDS)), texts),
        st.one_of(json_values, st.dictionaries(st.sampled_from(OPERATORS), criterion_value, max_size=3)),
        max_size=4)}),
)


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=criteria, sort=st.one_of(json_values, st.fixed_dictionaries(
    {"AttributeName": texts | st.sampled_from(["severity", "updatedAt"]), "OrderBy": texts})),
       allow_matches=st.booleans())
def test_finding_criteria(db, value, sort, allow_matches):
    """Valid criteria compile and run as a real query (the database never sees a bad value);
    anything else is a CriteriaError (400), never a 500."""
    from findings.models import Finding

    try:
        validate(value, allow_matches=allow_matches)
        q = criteria_q(value, allow_matches=allow_matches)
        list(Finding.objects.filter(q).order_by(*sort_order(sort if isinstance(sort, dict) else None))[:1])
        criteria_match(value, {}, allow_matches=allow_matches)
    except CriteriaError as exc:
        assert str(exc)
