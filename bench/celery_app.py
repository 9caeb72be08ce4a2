"""The product's Celery app for benchmark workers and beat: the same tasks and settings, with the
run's own queue as the default (VIGIL_BENCH_QUEUE), so beat's discovery goes to the run's workers
and no other worker on the machine takes the benchmark's tasks."""

import os

from console.celery import app

app.conf.task_default_queue = os.environ["VIGIL_BENCH_QUEUE"]

__all__ = ["app"]
