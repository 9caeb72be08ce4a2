"""The compiled matcher: precedence, subdomains, IPv6, junk input, built-in feeds, and agreement
with a plain `ipaddress` reference on random data."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

import numpy as np
import pytest

from intel.builtin import FEEDS, builtin_sources
from intel.matching import (
    CompiledList,
    CompiledMatcher,
    IndicatorHit,
    compile_parsed,
    custom_hit,
    ipv4_strings_to_u32,
    matcher_from_files,
)
from intel.parsers import parse_values

EXTERNAL = Path("/work/shared/data/external")


def compiled(*values: str) -> CompiledList:
    return compile_parsed(parse_values(values))


def test_trusted_wins_over_threat_lists():
    threat = compiled("192.0.2.0/24", "198.51.100.7", "evil.example.com", "2001:db8::/48")
    trusted = compiled("192.0.2.10", "ok.evil.example.com", "2001:db8::10")
    m = CompiledMatcher([(custom_hit("Bad"), threat)], trusted)
    found = m.lookup_ips(["192.0.2.9", "192.0.2.10", "198.51.100.7", "2001:db8::10", "2001:db8::11"])
    assert set(found) == {"192.0.2.9", "198.51.100.7", "2001:db8::11"}
    assert found["192.0.2.9"] == (IndicatorHit("Bad", "custom", "custom"),)
    assert m.trusted_ips(["192.0.2.10", "192.0.2.9", "2001:db8::10"]) == {"192.0.2.10", "2001:db8::10"}
    domains = m.lookup_domains(["evil.example.com", "ok.evil.example.com", "a.ok.evil.example.com"])
    assert set(domains) == {"evil.example.com"}
    hits, is_trusted = m.check("192.0.2.10")
    assert hits == (IndicatorHit("Bad", "custom", "custom"),) and is_trusted


def test_subdomains_case_trailing_dot_and_wildcards():
    m = CompiledMatcher([(custom_hit("L"), compiled("example.com", "*.wild.org"))])
    found = m.lookup_domains(["EXAMPLE.com.", "a.b.example.com", "notexample.com", "example.com.evil.net",
                              "wild.org", "x.wild.org", "", None, 42])
    assert set(found) == {"EXAMPLE.com.", "a.b.example.com", "x.wild.org"}


def test_overlapping_lists_report_every_list():
    a = compiled("10.0.0.0/8")
    b = compiled("10.1.0.0/16", "10.1.2.3")
    m = CompiledMatcher([(custom_hit("A"), a), (custom_hit("B"), b)])
    found = m.lookup_ips(["10.1.2.3", "10.2.0.1", "10.1.255.255", "11.0.0.0", "9.255.255.255"])
    assert {k: [h.list_name for h in v] for k, v in found.items()} == {
        "10.1.2.3": ["A", "B"], "10.2.0.1": ["A"], "10.1.255.255": ["A", "B"]}


def test_ipv6_and_mapped_addresses():
    m = CompiledMatcher([(custom_hit("L"), compiled("2001:db8::/32", "2a00::1", "203.0.113.0/24"))])
    found = m.lookup_ips(["2001:db8:ffff::1", "2001:db9::1", "2A00::1", "[2a00::1]", "::ffff:203.0.113.5", "2a00::2"])
    assert set(found) == {"2001:db8:ffff::1", "2A00::1", "[2a00::1]", "::ffff:203.0.113.5"}


def test_junk_none_duplicates_and_edges():
    m = CompiledMatcher([(custom_hit("L"), compiled("0.0.0.0/8", "255.255.255.255", "1.2.3.4"))])
    values = ["1.2.3.4"] * 5 + [None, "", "01.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "x" * 300, "0.0.0.1",
                                 "255.255.255.255", "255.255.255.254", 12345, "1.2.3.4:80"]
    assert set(m.lookup_ips(values)) == {"1.2.3.4", "0.0.0.1", "255.255.255.255"}
    assert m.lookup_ips([]) == {}
    assert CompiledMatcher().lookup_ips(["1.2.3.4"]) == {}


def test_agrees_with_ipaddress_reference_on_random_data():
    rng = random.Random(7)
    cidrs = [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.0/{rng.choice([8, 16, 20, 24, 28, 30])}"
             for _ in range(300)]
    exact = [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(3000)]
    trusted = exact[:50] + cidrs[:3]
    m = CompiledMatcher([(custom_hit("T"), compiled(*cidrs, *exact))], compiled(*trusted))
    assert m._v4_table is not None  # large enough for the /20 direct table
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs + exact]
    tnets = [ipaddress.ip_network(c, strict=False) for c in trusted]
    queries = exact[:400] + [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
                             for _ in range(3000)]
    queries += [str(next(iter(n.hosts()), n.network_address)) for n in nets[:300]]
    expect = set()
    for q in queries:
        ip = ipaddress.ip_address(q)
        if any(ip in n for n in nets) and not any(ip in n for n in tnets):
            expect.add(q)
    assert set(m.lookup_ips(queries)) == expect
    assert len(expect) > 300


def test_bulk_ipv4_conversion_matches_ipaddress_on_fuzz():
    rng = random.Random(3)
    alphabet = "0123456789.:a "
    for _ in range(2000):
        batch = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 17))) for _ in range(rng.randrange(1, 20))]
        batch += [f"{rng.randrange(300)}.{rng.randrange(300)}.{rng.choice(['1', '01', '256', ''])}.{rng.randrange(10)}"]
        idx, u32 = ipv4_strings_to_u32(batch)
        expect = {}
        for i, s in enumerate(batch):
            try:
                expect[i] = int(ipaddress.IPv4Address(s))
            except ValueError:
                pass
        assert dict(zip(idx.tolist(), u32.tolist(), strict=True)) == expect


def test_bulk_conversion_across_chunks():
    values = np.random.default_rng(1).integers(0, 2**32, size=40000, dtype=np.uint64)
    strs = [str(ipaddress.IPv4Address(int(v))) for v in values]
    strs[20000] = "not an ip"
    idx, u32 = ipv4_strings_to_u32(strs)
    assert len(idx) == 39999 and 20000 not in set(idx.tolist())
    assert u32[idx.tolist().index(20001)] == values[20001]


def test_serialisation_round_trip():
    cl = compiled("192.0.2.0/24", "2001:db8::/32", "example.com", "*.wild.org", "198.51.100.1")
    back = CompiledList.from_bytes(cl.to_bytes())
    assert back.v4_start.tolist() == cl.v4_start.tolist() and back.v4_end.tolist() == cl.v4_end.tolist()
    assert back.v6 == cl.v6 and back.domains == cl.domains and back.wildcards == cl.wildcards


def test_builtin_feeds_match_real_indicators():
    m = matcher_from_files()
    tor = (EXTERNAL / "tor-ip-addresses/tor-exit-nodes.lst").read_text().split()
    found = m.lookup_ips(tor)
    assert len(found) == len(set(tor))
    assert all(any(h.category == "tor_exit" for h in hits) for hits in found.values())
    domains = m.lookup_domains(["pool.minexmr.com", "x.c2.guarddutyc2activityb.com", "guarddutydgaactivity.com",
                                "www.example.com"])
    assert [h.category for h in domains["pool.minexmr.com"]] == ["crypto_mining"]
    assert [h.category for h in domains["x.c2.guarddutyc2activityb.com"]] == ["c2"]
    assert [h.category for h in domains["guarddutydgaactivity.com"]] == ["dga"]
    assert "www.example.com" not in domains
    assert {h.source for h, _ in builtin_sources()} == {"builtin"}
    assert len(FEEDS) == len({f.name for f in FEEDS})


def test_maltrail_whitelist_is_not_flagged():
    whitelist = [line.strip() for line in (EXTERNAL / "maltrail/data/whitelist.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    flagged = matcher_from_files().lookup_domains(whitelist)
    assert len(flagged) < len(whitelist) * 0.01


def test_matcher_from_files_with_user_lists(tmp_path):
    threat = tmp_path / "t.txt"
    threat.write_text("203.0.113.0/24\nbad.example\n")
    trusted = tmp_path / "ok.txt"
    trusted.write_text("203.0.113.5\n")
    m = matcher_from_files(threat_lists=[("MyList", str(threat), "TXT")], trusted_list=("Ok", str(trusted), "TXT"),
                           include_builtin=False)
    assert set(m.lookup_ips(["203.0.113.4", "203.0.113.5"])) == {"203.0.113.4"}
    assert m.lookup_domains(["x.bad.example"])["x.bad.example"][0].list_name == "MyList"
    other = matcher_from_files(threat_lists=[("Other", str(threat), "TXT")], include_builtin=False)
    assert other.version != m.version


def test_too_many_lists_refused():
    with pytest.raises(ValueError, match="at most 63 lists"):
        CompiledMatcher([(custom_hit(str(i)), compiled("192.0.2.1")) for i in range(64)])
