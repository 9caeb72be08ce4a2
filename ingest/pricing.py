"""GuardDuty's price tiers (kept in ingest/data/guardduty_pricing.json) applied to metered usage.

Tiers apply per account, per Region, per month; `up_to` is cumulative, in units of `unit_size`
(1M events, 1 GB). Flow logs and DNS logs share one GB meter, as GuardDuty bills them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PRICING_FILE = Path(__file__).parent / "data" / "guardduty_pricing.json"


@cache
def pricing() -> dict[str, Any]:
    return json.loads(PRICING_FILE.read_text())


def meter_of(data_source: str) -> str:
    for name, meter in pricing()["meters"].items():
        if data_source in meter["data_sources"]:
            return name
    raise KeyError(data_source)


def tiered_cost(meter: str, quantity: float) -> float:
    """Cost in USD of `quantity` (events or bytes) in one month on one meter."""
    spec = pricing()["meters"][meter]
    units = quantity / spec["unit_size"]
    cost, floor = 0.0, 0.0
    for tier in spec["tiers"]:
        ceiling = float("inf") if tier["up_to"] is None else float(tier["up_to"])
        if units <= floor:
            break
        cost += (min(units, ceiling) - floor) * tier["price"]
        floor = ceiling
    return cost


def quantity_of(data_source: str, events: int, size: int) -> int:
    return size if pricing()["meters"][meter_of(data_source)]["unit"] == "bytes" else events


def costs_by_source(usage: dict[str, tuple[int, int]], *, scale: float = 1.0) -> dict[str, float]:
    """Cost per data source for one account and Region: each meter's tiered cost over its total
    (times `scale`, e.g. 30/days to project a month), shared by the sources on that meter."""
    by_meter: dict[str, dict[str, float]] = {}
    for source, (events, size) in usage.items():
        by_meter.setdefault(meter_of(source), {})[source] = quantity_of(source, events, size) * scale
    out: dict[str, float] = {}
    for meter, parts in by_meter.items():
        total = sum(parts.values())
        cost = tiered_cost(meter, total)
        for source, quantity in parts.items():
            out[source] = cost * quantity / total if total else 0.0
    return out
