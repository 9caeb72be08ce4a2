from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from accounts.models import Account

# The navigation, in order. An entry appears once its app registers the URL name.
NAVIGATION = [
    ("Findings", "findings:list"),
    ("Accounts", "accounts:list"),
    ("Detectors", "accounts:detectors"),
    ("Sources", "ingest:sources"),
    ("Baselines", "ingest:baselines"),
    ("Threat lists", "intel:list"),
    ("Usage", "ingest:usage"),
    ("Settings", "accounts:settings"),
]


def _nav_items(request: HttpRequest) -> list[dict[str, Any]]:
    items = []
    for label, name in NAVIGATION:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        items.append({"label": label, "url": url, "active": request.path.startswith(url) and url != "/"})
    # The most specific match wins (Accounts vs Detectors share a prefix).
    active = [i for i in items if i["active"]]
    if len(active) > 1:
        best = max(active, key=lambda i: len(i["url"]))
        for item in items:
            item["active"] = item is best
    return items


def active_account(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    own = Account.objects.filter(memberships__user=user).order_by("aws_account_id")
    account = getattr(request, "active_account", None)
    role = None
    if account is not None:
        role = account.memberships.filter(user=user).values_list("role", flat=True).first()
    return {
        "active_account": account,
        "active_region": getattr(request, "active_region", None),
        "active_role": role,
        "switchable_accounts": own,
        "regions": settings.VIGIL_REGIONS,
        "nav_items": _nav_items(request),
    }
