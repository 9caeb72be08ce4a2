"""The Celery application. Broker and options come from Django settings (CELERY_*)."""

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("vigil", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@worker_process_init.connect
def _tune_allocator(**_: Any) -> None:
    """In the worker before its pool forks (prefork's processes inherit it), and in each pool process."""
    from ingest.allocator import reuse_freed_memory_if_configured

    reuse_freed_memory_if_configured()
