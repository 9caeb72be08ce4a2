"""A task goes through the real broker (Redis in CI, the embedded filesystem broker otherwise) to a
real Celery worker process started here, and its effect shows up in the real database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from accounts.models import Member, RelationshipStatus
from tests.faults.workers import ROOT, database_url


@pytest.fixture
def worker_queue(transactional_db):
    """Start a worker on a queue of its own (so no other worker on this machine takes the task)."""
    from django.conf import settings

    queue = f"vigil-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL
           if settings.CELERY_BROKER_URL != "filesystem://" else "", "CELERY_TASK_ALWAYS_EAGER": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "console", "worker", "--pool=solo", "-Q", queue,
         "-n", f"{queue}@%h", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print(out[-4000:])


def test_task_through_broker_to_real_worker(worker_queue, factory):
    from accounts.tasks import member_email_verify_task
    from console.celery import app

    admin_account, _, member_account, _ = factory.organisation()
    record = Member.objects.get()
    record.relationship_status = RelationshipStatus.EMAIL_VERIFICATION_IN_PROGRESS
    record.email = member_account.email
    record.save()

    app.conf.task_always_eager = False
    try:
        member_email_verify_task.apply_async(args=[record.id], queue=worker_queue)
    finally:
        app.conf.task_always_eager = True

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        record.refresh_from_db()
        if record.relationship_status == RelationshipStatus.INVITED:
            break
        time.sleep(0.25)
    assert record.relationship_status == RelationshipStatus.INVITED
