"""Reads for access keys, scoped to the acting person."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from gdapi.models import AccessKey


def access_key_list(*, actor: Any) -> QuerySet[AccessKey]:
    if not getattr(actor, "is_authenticated", False):
        return AccessKey.objects.none()
    return AccessKey.objects.filter(user=actor).select_related("account").order_by("-created_at", "-id")
