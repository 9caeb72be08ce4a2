"""Baseline state: exponentially decayed presence counts per feature value, small and JSON-friendly.

A profile counts *active hours*, not events: `n` is the decayed number of hours in which the
subject was active and `counts[f][v]` the decayed number of those hours in which value `v` of
feature `f` appeared. A daily habit is then as usual as an hourly one, and a chatty job cannot
drown a principal's rarer habits. Every count halves after `half_life` seconds, so old habits fade.

Rarity of a value is its smoothed negative log presence probability (additive smoothing):

    p(v) = (c_v + a) / (n + a·(K + 1))        rarity(v) = -ln p(v)

with a the smoothing constant (alpha) and K the number of distinct values seen for the feature (one extra slot for "unseen"): an
unseen value of a feature with many values is less surprising than one of a feature with one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1

# Most values kept per feature (the least frequent are dropped first); keeps a profile a few KB.
CAPS = {"api": 400, "service": 100, "network": 150, "asn": 80, "ua": 60, "ua_family": 40, "region": 40,
        "error": 40, "hour": 24, "category": 12, "port": 200, "protocol": 10, "peer": 200}
DEFAULT_CAP = 100
# Counts below this are dropped: after decay they no longer change any rarity meaningfully.
MIN_COUNT = 0.02


def decay_factor(elapsed_seconds: float, half_life_seconds: float) -> float:
    """The multiplier that `elapsed_seconds` of decay applies to a count (1 when nothing elapsed)."""
    if elapsed_seconds <= 0:
        return 1.0
    return 0.5 ** (elapsed_seconds / half_life_seconds)


def rarity(count: float, total: float, distinct: int, alpha: float = 1.0) -> float:
    """-ln of the smoothed presence probability of a value seen in `count` of `total` hours."""
    return -math.log((count + alpha) / (total + alpha * (distinct + 1)))


@dataclass
class RunningStats:
    """Exponentially weighted mean and variance (West's weighted incremental algorithm)."""

    weight: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def decay(self, factor: float) -> None:
        self.weight *= factor
        self.m2 *= factor

    def add(self, value: float, weight: float = 1.0) -> None:
        self.weight += weight
        delta = value - self.mean
        self.mean += delta * weight / self.weight
        self.m2 += weight * delta * (value - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.weight) if self.weight > 0 else 0.0

    def to_json(self) -> list[float]:
        return [round(self.weight, 6), round(self.mean, 6), round(self.m2, 6)]

    @classmethod
    def from_json(cls, data: list[float] | None) -> RunningStats:
        return cls(*data) if data else cls()


@dataclass
class Profile:
    """What is usual for one subject: an account, a principal or an instance."""

    first_seen: int = 0  # epoch seconds of the first activity ever seen
    last_update: int = 0  # epoch seconds the counts are decayed to
    hours: float = 0.0  # decayed active hours (n)
    events: float = 0.0  # decayed events, for display
    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    score_stats: RunningStats = field(default_factory=RunningStats)  # hourly anomaly scores (calibration)
    volume_stats: dict[str, RunningStats] = field(default_factory=dict)  # e.g. log bytes per peer-hour
    volume_max: dict[str, float] = field(default_factory=dict)  # decayed maximum of each volume
    info: dict[str, Any] = field(default_factory=dict)  # display: principal type, arn, user name…
    # The hour being observed: a log object covers minutes, so one hour arrives in many batches.
    # Its values collect here and are scored together against the completed hours; they join the
    # counts when a later hour begins, so splitting an hour across batches changes nothing.
    pending_hour: int = 0
    pending: dict[str, dict[str, int]] = field(default_factory=dict)
    pending_events: int = 0
    pending_score: float | None = None  # last score of the pending hour, calibrates when folded
    pending_flagged: bool = False  # a finding was raised for the pending hour
    dirty: bool = False

    # -- learning ----------------------------------------------------------------------------

    def advance(self, when: int, half_life: float) -> float:
        """Decay everything to `when`. Returns the weight an observation at `when` carries: 1, or
        less when it is older than what the profile has already learned (out-of-order batches)."""
        if not self.first_seen:
            self.first_seen = self.last_update = when
            return 1.0
        self.first_seen = min(self.first_seen, when)
        if when <= self.last_update:
            return decay_factor(self.last_update - when, half_life)
        factor = decay_factor(when - self.last_update, half_life)
        self.hours *= factor
        self.events *= factor
        for values in self.counts.values():
            for value in values:
                values[value] *= factor
        self.score_stats.decay(factor)
        for stats in self.volume_stats.values():
            stats.decay(factor)
        for name in self.volume_max:
            self.volume_max[name] *= factor
        self.last_update = when
        return 1.0

    def begin_hour(self, hour: int, half_life: float) -> bool:
        """Make `hour` the pending hour (folding the previous one in). False when `hour` is older
        than the pending hour (a late object): the caller then learns it directly."""
        self.dirty = True
        if not self.pending_hour:
            self.pending_hour = hour
            self.first_seen = min(self.first_seen, hour) if self.first_seen else hour
            return True
        if hour == self.pending_hour:
            return True
        if hour < self.pending_hour:
            self.first_seen = min(self.first_seen, hour) if self.first_seen else hour
            return False
        self.fold(half_life)
        self.pending_hour = hour
        return True

    def fold(self, half_life: float) -> None:
        """Add the pending hour to the counts (and its score to the calibration statistics)."""
        if not self.pending_hour:
            return
        self.learn_hour(self.pending_hour, self.pending, half_life, events=self.pending_events)
        if self.pending_score is not None and not self.pending_flagged:
            self.score_stats.add(self.pending_score)
        self.pending, self.pending_events, self.pending_score, self.pending_flagged = {}, 0, None, False

    def add_pending(self, observed: dict[str, dict[str, int]], events: int) -> dict[str, dict[str, int]]:
        """Merge a batch's observation of the pending hour; returns the whole hour so far."""
        for feature, values in observed.items():
            target = self.pending.setdefault(feature, {})
            for value, n in values.items():
                target[value] = target.get(value, 0) + n
        self.pending_events += events
        self.dirty = True
        return self.pending

    def learn_hour(self, when: int, observed: dict[str, dict[str, int]], half_life: float, *,
                   events: int = 0) -> None:
        """Record one active hour: every value in `observed` (feature -> value -> events) was present."""
        weight = self.advance(when, half_life)
        self.hours += weight
        self.events += weight * events
        for feature, values in observed.items():
            if feature.startswith("!"):  # bookkeeping of the pending hour, not a habit
                continue
            if feature.startswith("_"):  # a volume (e.g. bytes per peer): learn its log-scale spread
                stats = self.volume_stats.setdefault(feature, RunningStats())
                for amount in values.values():
                    stats.add(math.log1p(amount), weight)
                self.volume_max[feature] = max(self.volume_max.get(feature, 0.0), weight * max(values.values(), default=0))
                continue
            counts = self.counts.setdefault(feature, {})
            for value in values:
                counts[value] = counts.get(value, 0.0) + weight
        self.dirty = True

    def prune(self) -> None:
        for feature, values in self.counts.items():
            small = [v for v, c in values.items() if c < MIN_COUNT]
            for v in small:
                del values[v]
            cap = CAPS.get(feature, DEFAULT_CAP)
            if len(values) > cap:
                keep = sorted(values.items(), key=lambda item: item[1], reverse=True)[:cap]
                self.counts[feature] = dict(keep)

    # -- reading -----------------------------------------------------------------------------

    def count(self, feature: str, value: str) -> float:
        return self.counts.get(feature, {}).get(value, 0.0)

    def probability(self, feature: str, value: str, alpha: float) -> float:
        values = self.counts.get(feature, {})
        return (values.get(value, 0.0) + alpha) / (self.hours + alpha * (len(values) + 1))

    def rarity(self, feature: str, value: str, alpha: float) -> float:
        values = self.counts.get(feature, {})
        return rarity(values.get(value, 0.0), self.hours, len(values), alpha)

    def is_learning(self, when: int, learning_seconds: float) -> bool:
        return not self.first_seen or when - self.first_seen < learning_seconds

    def top(self, feature: str, limit: int = 10) -> list[tuple[str, float]]:
        values = self.counts.get(feature, {})
        return sorted(values.items(), key=lambda item: (-item[1], item[0]))[:limit]

    # -- persistence -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_VERSION,
            "first": self.first_seen,
            "last": self.last_update,
            "n": round(self.hours, 6),
            "events": round(self.events, 3),
            "c": {f: {v: round(c, 5) for v, c in values.items()} for f, values in self.counts.items()},
            "s": self.score_stats.to_json(),
            "vol": {k: s.to_json() for k, s in self.volume_stats.items()},
            "vmax": {k: round(v, 1) for k, v in self.volume_max.items()},
            "info": self.info,
            "ph": self.pending_hour,
            "p": self.pending,
            "pe": self.pending_events,
            "ps": self.pending_score,
            "pf": self.pending_flagged,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Profile:
        if not data or data.get("v") != STATE_VERSION:
            return cls()
        return cls(
            first_seen=int(data.get("first", 0)),
            last_update=int(data.get("last", 0)),
            hours=float(data.get("n", 0.0)),
            events=float(data.get("events", 0.0)),
            counts={f: dict(values) for f, values in data.get("c", {}).items()},
            score_stats=RunningStats.from_json(data.get("s")),
            volume_stats={k: RunningStats.from_json(v) for k, v in data.get("vol", {}).items()},
            volume_max=dict(data.get("vmax", {})),
            info=dict(data.get("info", {})),
            pending_hour=int(data.get("ph", 0)),
            pending={f: dict(values) for f, values in data.get("p", {}).items()},
            pending_events=int(data.get("pe", 0)),
            pending_score=data.get("ps"),
            pending_flagged=bool(data.get("pf", False)),
        )


def frequency_tag(count: float, hours: float) -> str:
    """GuardDuty's words for how usual a profiled value is."""
    share = count / hours if hours else 0.0
    if share >= 0.2:
        return "frequent"
    if share >= 0.02:
        return "infrequent"
    return "rare"


# Subject kinds a profile belongs to.
ACCOUNT, PRINCIPAL, INSTANCE = "account", "principal", "instance"


class Baselines:
    """All profiles a batch touches, keyed (aws_account_id, kind, key). Missing ones start empty.

    Pure and in memory: the offline analyzer keeps one for a whole run, the pipeline loads the
    rows a batch needs from the database (ingest.anomaly.services) and saves the dirty ones back.
    """

    def __init__(self, profiles: dict[tuple[str, str, str], Profile] | None = None) -> None:
        self.profiles: dict[tuple[str, str, str], Profile] = profiles or {}

    def get(self, account_id: str, kind: str, key: str) -> Profile:
        ident = (account_id, kind, key)
        profile = self.profiles.get(ident)
        if profile is None:
            profile = self.profiles[ident] = Profile()
        return profile

    def peek(self, account_id: str, kind: str, key: str) -> Profile | None:
        return self.profiles.get((account_id, kind, key))

    def dirty(self) -> dict[tuple[str, str, str], Profile]:
        return {ident: p for ident, p in self.profiles.items() if p.dirty}

    def __len__(self) -> int:
        return len(self.profiles)
