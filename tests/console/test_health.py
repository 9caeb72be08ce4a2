import json

from tests.console.test_settings import run_python


def test_healthz_reports_database_and_broker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["status"] == "ok" and body["database"]["ok"] and body["broker"]["ok"]


def test_healthz_503_when_broker_unreachable(tmp_path):
    # A fresh process whose broker URL points at a port nothing listens on.
    code = ("import django, json; django.setup(); from django.test import Client; "
            "r = Client().get('/healthz'); print(r.status_code, json.dumps(json.loads(r.content)))")
    result = run_python(code, DJANGO_SETTINGS_MODULE="console.settings", VIGIL_VAR_DIR=str(tmp_path),
                        CELERY_BROKER_URL="redis://127.0.0.1:1/0", ALLOWED_HOSTS="testserver", HTTPS="0")
    status, body = result.stdout.split(" ", 1)
    assert status == "503", result.stderr
    body = json.loads(body)
    assert body["broker"]["ok"] is False and body["database"]["ok"] is True
