"""Tunables of the anomaly model, with their documented defaults (settings VIGIL_ANOMALY_*)."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True)
class AnomalyConfig:
    # Counts halve after this many days, so habits older than a few half-lives fade away.
    half_life_days: float = 14.0
    # A principal (or account, or instance) first seen less than this long ago is still learning:
    # its findings are suppressed (learning_mode "suppress") or emitted at Low ("low").
    learning_days: float = 7.0
    learning_mode: str = "suppress"
    # Additive smoothing of presence probabilities.
    alpha: float = 1.0
    # Principal rarity backs off to the account's: p = λ·p_principal + (1-λ)·p_account.
    backoff: float = 0.6
    # A value is "unusual" when its rarity (nats) reaches this (≈ present in under 5 % of hours).
    novelty: float = 3.0
    # An hour is anomalous when its score exceeds max(floor, mean + sigmas·std) of the principal's
    # own scores on the hours it has already lived through (calibration on its benign baseline).
    threshold_floor: float = 9.0
    threshold_sigmas: float = 4.0
    # Hours of scores needed before the calibrated threshold replaces the floor alone.
    calibration_hours: float = 24.0
    # Look up the ASN of source addresses (geoip2fast's bundled GeoLite2-derived data).
    asn_lookup: bool = True
    # Flow logs: an hour's egress bytes to one host must exceed this floor and `volume_ratio` times
    # the most the instance usually sends to any host in an hour (decayed maximum) to be
    # TrafficVolumeUnusual.
    traffic_min_bytes: int = 50_000_000
    volume_ratio: float = 10.0

    @property
    def half_life(self) -> float:
        return self.half_life_days * DAY

    @property
    def learning_seconds(self) -> float:
        return self.learning_days * DAY


def config_from_settings() -> AnomalyConfig:
    from django.conf import settings

    return AnomalyConfig(
        half_life_days=float(getattr(settings, "VIGIL_ANOMALY_HALF_LIFE_DAYS", 14)),
        learning_days=float(getattr(settings, "VIGIL_ANOMALY_LEARNING_DAYS", 7)),
        learning_mode=str(getattr(settings, "VIGIL_ANOMALY_LEARNING_MODE", "suppress")),
        threshold_floor=float(getattr(settings, "VIGIL_ANOMALY_THRESHOLD", 9.0)),
        asn_lookup=bool(getattr(settings, "VIGIL_ANOMALY_ASN_LOOKUP", True)),
    )
