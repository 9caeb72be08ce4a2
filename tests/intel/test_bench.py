"""The benchmark entry point runs and prints the agreed line (small size; numbers not asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_intel_prints_the_line():
    out = subprocess.run([sys.executable, "-m", "bench", "--size", "small", "intel.lookup"],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    assert re.search(r"^bench intel\.lookup value=\d+ unit=lookups/s baseline=\d+ ratio=[\d.]+$", out, re.M)


def test_bench_registry_refuses_duplicates():
    from bench import REGISTRY, benchmark

    benchmark("test.only")(lambda size: None)
    try:
        with pytest.raises(ValueError, match="registered twice"):
            benchmark("test.only")(lambda size: None)
    finally:
        REGISTRY.pop("test.only")
