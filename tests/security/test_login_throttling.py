"""Login brute force is throttled (django-axes) and every lockout is refused even with the right password."""

from __future__ import annotations

from django.urls import reverse

from tests.factories import PASSWORD


def test_repeated_failures_lock_the_login(client, factory, settings):
    factory.user("alice")
    url = reverse("login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(url, {"username": "alice", "password": "wrong"})
        assert response.status_code in (200, 429)
    locked = client.post(url, {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_successful_login_works_below_the_limit(client, factory):
    factory.user("bob")
    client.post(reverse("login"), {"username": "bob", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "bob", "password": PASSWORD})
    assert response.status_code == 302
    assert client.session["_auth_user_id"]


def test_production_cookies_are_secure(tmp_path):
    from tests.console.test_settings import run_python

    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS > 0)")
    result = run_python(code, DJANGO_SETTINGS_MODULE="console.settings", VIGIL_VAR_DIR=str(tmp_path), DEBUG="0")
    assert result.stdout.split() == ["True", "True", "True", "True"], result.stderr
