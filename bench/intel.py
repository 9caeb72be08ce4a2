"""intel.lookup: the compiled matcher against the plain `ipaddress` approach (one Python set of
network integers per prefix length), same lists, same queries, same run.

Lists: 100k IPv4 addresses + 10k CIDRs (/16../30, mostly /24) + 50k domains. Queries: IPv4 strings,
98 % random, 1 % listed addresses, 1 % inside listed CIDRs (the shape of limits.md), mostly
distinct so that deduplication does not flatter the matcher.

Times are CPU seconds of this process (`time.process_time`; numeric libraries pinned to one thread
by bench/__main__.py), i.e. lookups per second per core, robust to other load on the machine.
Best of 3 runs for the matcher; one run over a sample for the (slow) baseline.
"""

from __future__ import annotations

import ipaddress
import time

import numpy as np

from bench import benchmark, report

SIZES = {"small": 200_000, "default": 1_000_000, "large": 4_000_000}
BASELINE_SAMPLE = {"small": 50_000, "default": 200_000, "large": 400_000}


def _dotted(values: np.ndarray) -> list[str]:
    return [f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}" for x in values.tolist()]


def make_data(n_queries: int, seed: int = 42) -> tuple[list[str], list[str], list[str], list[str]]:
    rng = np.random.default_rng(seed)
    exact = rng.integers(0x01000000, 0xE0000000, size=100_000, dtype=np.uint64).astype(np.uint32)
    prefix = rng.choice([16, 20, 22, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 26, 28, 30], size=10_000).astype(np.uint64)
    nets = rng.integers(0x01000000, 0xE0000000, size=10_000, dtype=np.uint64)
    nets = (nets >> (32 - prefix)) << (32 - prefix)
    cidrs = [f"{ip}/{p}" for ip, p in zip(_dotted(nets.astype(np.uint32)), prefix.tolist(), strict=True)]
    domains = [f"d{i}-{rng.integers(1 << 30)}.example{i % 97}.com" for i in range(50_000)]
    q = rng.integers(0x01000000, 0xE0000000, size=n_queries, dtype=np.uint64).astype(np.uint32)
    k = n_queries // 100
    q[:k] = exact[rng.integers(0, len(exact), size=k)]
    pick = rng.integers(0, len(nets), size=k)
    span = np.uint64(1) << (np.uint64(32) - prefix[pick])
    q[k : 2 * k] = (nets[pick] + rng.integers(0, 1 << 62, size=k).astype(np.uint64) % span).astype(np.uint32)
    rng.shuffle(q)
    return _dotted(exact), cidrs, domains, _dotted(q)


class PrefixSetsBaseline:
    """ipaddress parse; one set of network ints per distinct prefix length, longest first."""

    def __init__(self, exact: list[str], cidrs: list[str]) -> None:
        by: dict[int, set[int]] = {32: {int(ipaddress.IPv4Address(s)) for s in exact}}
        for c in cidrs:
            net = ipaddress.IPv4Network(c, strict=False)
            by.setdefault(net.prefixlen, set()).add(int(net.network_address))
        self.tables = [((0xFFFFFFFF << (32 - p)) & 0xFFFFFFFF, s) for p, s in sorted(by.items(), reverse=True)]

    def lookup(self, values: list[str]) -> set[str]:
        out = set()
        tables = self.tables
        for s in values:
            x = int(ipaddress.IPv4Address(s))
            for mask, table in tables:
                if x & mask in table:
                    out.add(s)
                    break
        return out


def _best(fn, repeats: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result


@benchmark("intel.lookup")
def intel_lookup(size: str) -> None:
    from intel.matching import CompiledMatcher, compile_parsed, custom_hit
    from intel.parsers import parse_values

    exact, cidrs, domains, queries = make_data(SIZES[size])
    matcher = CompiledMatcher([(custom_hit("bench"), compile_parsed(parse_values(exact + cidrs + domains)))])
    baseline = PrefixSetsBaseline(exact, cidrs)
    matcher.lookup_ips(queries[:10_000])  # warm-up
    elapsed, found = _best(lambda: matcher.lookup_ips(queries), repeats=5)
    sample = queries[: BASELINE_SAMPLE[size]]
    base_elapsed, base_found = _best(lambda: baseline.lookup(sample), repeats=1)
    # Same answers on the same sample, or the comparison means nothing.
    assert base_found == {q for q in sample if q in found}, "matcher and baseline disagree"
    report("intel.lookup", len(queries) / elapsed, "lookups/s", len(sample) / base_elapsed)
    domain_queries = [f"www.{d}" for d in domains[:25_000]] + [f"host{i}.unlisted{i % 1000}.net" for i in range(75_000)]
    d_elapsed, d_found = _best(lambda: matcher.lookup_domains(domain_queries))
    assert len(d_found) == 25_000
    print(f"# domains: {len(domain_queries) / d_elapsed:,.0f} lookups/s (subdomain queries, 25 % listed)", flush=True)
