"""The console's current account and region (the switcher in the navigation bar)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts import access

SESSION_ACCOUNT = "active_account_id"
SESSION_REGION = "active_region"


class ActiveAccountMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.active_account = None  # type: ignore[attr-defined]
        request.active_region = settings.VIGIL_REGIONS[0]  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            own = access.direct_account_ids(user)
            wanted = request.session.get(SESSION_ACCOUNT)
            account_id = wanted if wanted in own else (min(own) if own else None)
            if account_id is not None:
                from accounts.models import Account

                request.active_account = Account.objects.filter(id=account_id).first()  # type: ignore[attr-defined]
            region = request.session.get(SESSION_REGION)
            if region in settings.VIGIL_REGIONS:
                request.active_region = region  # type: ignore[attr-defined]
        return self.get_response(request)
