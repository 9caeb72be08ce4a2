"""Scoring one principal-hour against its baseline: a naive-Bayes sum of log-rarities.

Each feature value present in the hour gets a rarity (nats) from the principal's profile backed
off to the account's (Jelinek-Mercer interpolation):

    p(v) = λ·p_principal(v) + (1-λ)·p_account(v)        r(v) = -ln p(v)

(λ = 0.6 for networks, regions, user agents and hours; 0.97 for APIs, services and categories.)

Values with r ≥ novelty are *unusual*. Treating features as independent, the hour's score is the
weighted sum of the unusual log-rarities: per feature the rarest value, except APIs where the
five rarest count (a burst of never-seen calls is more telling than one), plus the account-level
rarity of the region and ASN (a region or network the whole account has never used). The hour is
anomalous when the score passes the principal's threshold, calibrated on its own benign hours
(mean + k·std of its past scores, never below a floor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ingest.anomaly.config import AnomalyConfig
from ingest.anomaly.state import Profile

# Weight of each feature's log-rarity in the hour score. User agents count half twice (family,
# then family/major) so that a new major version of a known tool weighs half a new tool.
WEIGHTS = {"api": 0.5, "category": 1.0, "region": 1.0, "network": 1.0, "asn": 1.0, "ua_family": 0.5,
           "ua": 0.5, "hour": 0.5, "error": 1.0}
# Not scored: `service` (a new service always comes with a new API: counting both would count one
# surprise twice). It is still profiled and shown.
ACCOUNT_WEIGHTS = {"region": 0.75, "asn": 0.5}
# What a principal calls is its own habit: its API rarity leans on the account far less than its
# networks, regions or tools do (a colleague's daily IAM work must not make IAM writes usual for all).
BACKOFF = {"api": 0.97, "category": 0.97, "service": 0.97}
API_TOP = 5


@dataclass(frozen=True)
class Unusual:
    feature: str
    value: str
    rarity: float  # nats, principal backed off to account
    probability: float
    principal_hours: float  # decayed active hours of the principal with this value
    account_hours: float
    events: int  # events with this value in the scored hour
    account_rarity: float = 0.0


@dataclass
class HourScore:
    score: float
    threshold: float
    unusual: list[Unusual] = field(default_factory=list)
    contributions: dict[str, float] = field(default_factory=dict)

    @property
    def anomalous(self) -> bool:
        return self.score > self.threshold

    def by_feature(self, feature: str) -> list[Unusual]:
        return [u for u in self.unusual if u.feature == feature]


def threshold_for(profile: Profile, config: AnomalyConfig) -> float:
    stats = profile.score_stats
    if stats.weight < config.calibration_hours:
        return config.threshold_floor
    return max(config.threshold_floor, stats.mean + config.threshold_sigmas * stats.std)


def value_rarity(principal: Profile, account: Profile, feature: str, value: str,
                 config: AnomalyConfig) -> tuple[float, float]:
    """(rarity, probability) of `value` for the principal, backed off to the account."""
    backoff = BACKOFF.get(feature, config.backoff)
    p = backoff * principal.probability(feature, value, config.alpha)
    p += (1.0 - backoff) * account.probability(feature, value, config.alpha)
    return -math.log(p), p


def score_hour(principal: Profile, account: Profile, observed: dict[str, dict[str, int]],
               config: AnomalyConfig) -> HourScore:
    unusual: list[Unusual] = []
    contributions: dict[str, float] = {}
    for feature, values in observed.items():
        weight = WEIGHTS.get(feature)
        if weight is None:
            continue
        rarest: list[float] = []
        for value, events in values.items():
            r, p = value_rarity(principal, account, feature, value, config)
            if r < config.novelty:
                continue
            account_r = account.rarity(feature, value, config.alpha) if feature in ACCOUNT_WEIGHTS else 0.0
            unusual.append(Unusual(feature, value, r, p, principal.count(feature, value),
                                   account.count(feature, value), events, account_r))
            rarest.append(r)
        if rarest:
            rarest.sort(reverse=True)
            contributions[feature] = weight * sum(rarest[: API_TOP if feature == "api" else 1])
        account_weight = ACCOUNT_WEIGHTS.get(feature)
        if account_weight:
            account_rarest = max((u.account_rarity for u in unusual if u.feature == feature), default=0.0)
            if account_rarest >= config.novelty:
                contributions[f"account_{feature}"] = account_weight * account_rarest
    unusual.sort(key=lambda u: -u.rarity)
    return HourScore(round(sum(contributions.values()), 4), round(threshold_for(principal, config), 4),
                     unusual, {k: round(v, 4) for k, v in contributions.items()})
