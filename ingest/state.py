"""State stores for stateful rules: in memory (offline analysis) or in the database (workers).

Rules reach them through `RuleContext.state_get` / `state_put`. The database store reads rows on
demand and writes them back when the object's transaction commits its findings, so the state a
retried object sees is the state before its first attempt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

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
        from ingest.models import RuleState

        rows = [RuleState(account_id=self.account_id, region=self.region, rule=rule, key=db_key(key),
                          value=self.values[(rule, key)])
                for rule, key in sorted(self.dirty)]
        RuleState.objects.bulk_create(rows, update_conflicts=True, unique_fields=["account", "region", "rule", "key"],
                                      update_fields=["value", "updated_at"])
        self.dirty.clear()
