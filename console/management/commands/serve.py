"""Run the console and a real Celery worker (with beat) side by side until interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start the web server and a Celery worker with beat; stop both on Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--addr", default=os.environ.get("VIGIL_ADDR", "127.0.0.1:8000"))
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args, addr: str, concurrency: int, **options) -> None:
        python = sys.executable
        # `kill` (SIGTERM) as well as Ctrl-C stops both children: SystemExit runs the `finally` below.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        worker = subprocess.Popen(
            [python, "-m", "celery", "-A", "console", "worker", "-B", "--loglevel=INFO",
             f"--concurrency={concurrency}", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        )
        web = subprocess.Popen([python, "manage.py", "runserver", addr, "--noreload"])
        self.stdout.write(self.style.SUCCESS(f"\nVigil is running: http://{addr}/  (Ctrl-C to stop)\n"))
        try:
            web.wait()
        except KeyboardInterrupt:
            pass
        finally:
            for proc in (web, worker):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in (web, worker):
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
