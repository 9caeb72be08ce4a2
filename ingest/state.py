"""State stores for stateful rules: in memory (offline analysis) or in the database (workers).

Rules reach them through `RuleContext.state_get` / `state_put`. The database store reads rows on
demand and writes them back when the object's transaction commits its findings, so the state a
retried object sees is the state before its first attempt.

Rows expire: `rule_state_expire` (Celery beat task `ingest.rule_state_expire`) deletes the rows each
rule no longer needs (its window plus a grace period, or the history period).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.utils.timezone import now as django_now

MAX_KEY_CHARS = 256  # RuleState.key


def db_key(key: str) -> str:
    """Rule keys are built from log fields (user names, ARNs) an attacker can make any length: a
    longer key is stored by its digest, so one such event cannot fail its object's transaction."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class MemoryStateStore:
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    def get(self, rule: str, keys: Iterable[str]) -> dict[str, Any]:
        return {k: self.values[(rule, k)] for k in keys if (rule, k) in self.values}

    def put(self, rule: str, key: str, value: Any) -> None:
        self.values[(rule, key)] = value

    def flush(self) -> None:
        return None


class DatabaseStateStore(MemoryStateStore):
    def __init__(self, *, account_id: int, region: str) -> None:
        super().__init__()
        self.account_id, self.region = account_id, region
        self.dirty: set[tuple[str, str]] = set()
        self.loaded: set[tuple[str, str]] = set()

    def get(self, rule: str, keys: Iterable[str]) -> dict[str, Any]:
        from ingest.models import RuleState

        wanted = [k for k in keys if (rule, k) not in self.loaded]
        if wanted:
            by_db_key = {db_key(k): k for k in wanted}
            rows = RuleState.objects.filter(account_id=self.account_id, region=self.region, rule=rule,
                                            key__in=list(by_db_key))
            for key, value in rows.values_list("key", "value"):
                self.values[(rule, by_db_key[key])] = value
            self.loaded.update((rule, k) for k in wanted)
        return super().get(rule, keys)

    def put(self, rule: str, key: str, value: Any) -> None:
        super().put(rule, key, value)
        self.dirty.add((rule, key))

    def flush(self) -> None:
        from console.db import upsert
        from ingest.models import RuleState

        rows = [RuleState(account_id=self.account_id, region=self.region, rule=rule, key=db_key(key),
                          value=self.values[(rule, key)])
                for rule, key in sorted(self.dirty)]
        if rows:
            upsert(RuleState, rows, conflict=["account", "region", "rule", "key"],
                   update="{value} = EXCLUDED.{value}, {updated_at} = EXCLUDED.{updated_at}")
        self.dirty.clear()


# --- expiry -----------------------------------------------------------------------------------------

_WINDOW_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def rule_window(rule: Any) -> timedelta | None:
    """The longest window a rule counts over, from its settings (`window_seconds`, `window_minutes`,
    `human_window_hours`, ...) with deployment overrides applied; None when it declares none."""
    from django.conf import settings

    overrides = getattr(settings, "VIGIL_RULE_SETTINGS", {}).get(rule.name, {})
    seconds = []
    for name, setting in rule.settings.items():
        unit = name.rsplit("_", 1)[-1]
        if "window" in name and unit in _WINDOW_UNITS:
            seconds.append(float(overrides.get(name, setting.default)) * _WINDOW_UNITS[unit])
    return timedelta(seconds=max(seconds)) if seconds else None


def rule_state_retention(rule: Any) -> timedelta | None:
    """How long a rule's state rows live after their last update; None for rules keeping no state.

    Rows are stamped with wall-clock time but hold event-time windows, so a window's rows are kept a
    grace period longer (late log delivery, retried objects). History rules (and rules with state but
    no window setting: configuration such as trail status or Block Public Access flags) keep theirs
    for the history period, after which an idle resource is learned afresh."""
    from django.conf import settings

    if rule.state == "none":
        return None
    window = rule_window(rule)
    if rule.history or window is None:
        return timedelta(days=settings.VIGIL_RULE_STATE_HISTORY_DAYS)
    return window + timedelta(hours=settings.VIGIL_RULE_STATE_GRACE_HOURS)


def rule_state_expire(*, now: datetime | None = None, batch: int = 5000) -> dict[str, int]:
    """Delete every rule's state rows older than its retention. Returns rows deleted per rule.

    Deletes in bounded batches (by primary key) so a large backlog never holds long locks against
    the workers writing state; rows of rules no longer registered go after the history period."""
    from django.conf import settings

    from ingest.models import RuleState
    from ingest.rules import REGISTRY, load_rules

    load_rules()
    now = now or django_now()
    deleted: dict[str, int] = {}
    retention = {name: rule_state_retention(rule) for name, rule in REGISTRY.items()}
    stored_rules = set(RuleState.objects.values_list("rule", flat=True).distinct())
    for name in sorted(stored_rules):
        keep = retention.get(name) or timedelta(days=settings.VIGIL_RULE_STATE_HISTORY_DAYS)
        stale = RuleState.objects.filter(rule=name, updated_at__lt=now - keep)
        total = 0
        while ids := list(stale.values_list("pk", flat=True)[:batch]):
            total += RuleState.objects.filter(pk__in=ids).delete()[0]
        if total:
            deleted[name] = total
    return deleted
