"""The feeds behind BlackholeTraffic and DropPoint, and the one-category-per-tester-name rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intel.matching import matcher_from_files

TESTER = Path("/work/shared/data/external/amazon-guardduty-tester/definitions.json")


@pytest.fixture(scope="module")
def matcher():
    return matcher_from_files()


def test_bogons_are_black_holes_but_no_vpc_range_is(matcher):
    hits = matcher.lookup_ips(["0.1.2.3", "240.0.13.7", "250.1.1.1", "100::1", "100::ffff:1",
                               "10.0.0.1", "172.16.5.5", "100.64.0.1", "169.254.169.254", "198.19.1.1",
                               "224.0.0.251", "192.0.2.1", "198.51.100.7", "100:0:0:1::1"])
    blackholes = sorted(ip for ip, found in hits.items() if any(h.category == "blackhole" for h in found))
    assert blackholes == ["0.1.2.3", "100::1", "100::ffff:1", "240.0.13.7", "250.1.1.1"]


def test_androxgh0st_collectors_are_drop_points(matcher):
    found = matcher.lookup_ips(["109.237.97.180", "185.83.146.154"])
    assert all(any(h.category == "drop_point" and h.list_name == "Androxgh0st" for h in hits)
               for hits in found.values()) and len(found) == 2


def test_each_tester_name_is_in_exactly_one_category(matcher):
    names = [d["indicator"] for d in json.loads(TESTER.read_text())["definitions"]
             if d["logSource"] == "dns" and d.get("indicator")]
    found = matcher.lookup_domains(names)
    assert {n: len({h.category for h in found[n]}) for n in names} == dict.fromkeys(names, 1)
    assert "guarddutyc2activityb.com" not in matcher.lookup_domains(["guarddutyc2activityb.com"])
