"""Suite-wide set-up: settings for plain-HTTP test servers, eager Celery for unit tests, factories."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.factories import AccountFactory


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # The test client and live_server speak plain HTTP on loopback.
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_HSTS_SECONDS = 0
    # Hashing strength is not under test; PBKDF2 at full cost would dominate the suite's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from console.celery import app

    # Unit tests run tasks in-process; integration tests start real workers and switch this off.
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True


@pytest.fixture
def factory(db) -> AccountFactory:
    return AccountFactory()


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
