"""Settings come from the environment; production-like settings pass Django's deploy checks."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def clean_env(**env: str) -> dict[str, str]:
    """The environment of a fresh process: no test-only variables, no service URLs unless given."""
    dropped = {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **env}


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = clean_env(**env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_clean_with_production_like_settings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=clean_env(DEBUG="0", HTTPS="1", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="vigil.example.com",
                      VIGIL_VAR_DIR=str(tmp_path)),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_generated_once_into_var(tmp_path):
    code = "from django.conf import settings; import django; django.setup(); print(settings.SECRET_KEY)"
    env = {"DJANGO_SETTINGS_MODULE": "console.settings", "VIGIL_VAR_DIR": str(tmp_path), "SECRET_KEY": ""}
    first = run_python(code, **env)
    second = run_python(code, **env)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text().strip()
    assert first.stdout.strip() == second.stdout.strip() == key and len(key) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_defaults_need_no_server(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG)")
    result = run_python(code, DJANGO_SETTINGS_MODULE="console.settings", VIGIL_VAR_DIR=str(tmp_path))
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://", "False"], result.stderr


def test_database_and_broker_urls_from_environment(tmp_path):
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "d = s.DATABASES['default']; print(d['ENGINE'], d['NAME'], d['HOST'], s.CELERY_BROKER_URL)")
    result = run_python(code, DJANGO_SETTINGS_MODULE="console.settings", VIGIL_VAR_DIR=str(tmp_path),
                         DATABASE_URL="postgres://u:p@db.example:5432/vigil", CELERY_BROKER_URL="redis://r:6379/2")
    assert result.stdout.split() == ["django.db.backends.postgresql", "vigil", "db.example", "redis://r:6379/2"]


def test_compose_env_names_exist_in_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    settings_source = (ROOT / "console" / "settings.py").read_text()
    read_names = set(re.findall(r'env_(?:str|bool|int|list)\("([A-Z0-9_]+)"', settings_source))
    services = compose["services"]
    for name in ("web", "worker", "beat", "postgres", "redis"):
        assert name in services, name
    for name in ("web", "worker", "beat", "migrate"):
        env_names = set(services[name]["environment"])
        assert env_names, name
        missing = env_names - read_names
        assert not missing, f"{name} sets {missing}, which console/settings.py never reads"
    for name, service in services.items():
        assert "healthcheck" in service or name in {"migrate", "beat"}, f"{name} has no health check"


def test_env_example_lists_every_setting():
    settings_source = (ROOT / "console" / "settings.py").read_text()
    read_names = set(re.findall(r'env_(?:str|bool|int|list)\("([A-Z0-9_]+)"', settings_source))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read_names <= documented, read_names - documented
