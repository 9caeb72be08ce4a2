"""ingest.allocator: a worker's large buffers come from the heap and are reused, not mapped afresh.

Each case runs in a fresh interpreter (malloc settings are per process and cannot be undone), and
reads glibc's own counters (mallinfo2): bytes in mmapped blocks while a 64 MB buffer is alive."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")

PROBE = textwrap.dedent("""
    import ctypes, os, sys

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    {setup}
    buffer = bytes(64 * 1024 * 1024)
    mapped = libc.mallinfo2().hblkhd
    del buffer
    print(mapped >= 64 * 1024 * 1024)
""")


def _mapped(setup: str, **env: str) -> bool:
    """Whether a 64 MB buffer was an mmapped block, after `setup` in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    return out.stdout.strip() == "True"


def test_by_default_glibc_maps_a_large_buffer_afresh():
    assert _mapped("pass")


def test_reuse_freed_memory_serves_it_from_the_heap():
    assert _mapped("from ingest.allocator import reuse_freed_memory; assert reuse_freed_memory()") is False


def test_it_is_idempotent():
    assert _mapped("from ingest.allocator import reuse_freed_memory; "
                   "assert reuse_freed_memory() and reuse_freed_memory()") is False


@pytest.mark.parametrize(("setting", "mapped"), [("true", False), ("false", True)])
def test_celery_workers_apply_it_unless_switched_off(setting, mapped):
    setup = ("import django; django.setup(); from console.celery import _tune_allocator; _tune_allocator()")
    assert _mapped(setup, VIGIL_INGEST_REUSE_FREED_MEMORY=setting, DJANGO_SETTINGS_MODULE="console.settings") is mapped


def test_the_analyze_command_applies_it(tmp_path):
    empty = tmp_path / "logs"
    empty.mkdir()
    setup = ("import django; django.setup(); from django.core.management import call_command; "
             f"call_command('analyze', {str(empty)!r}, '--no-builtin', '--output', {str(tmp_path / 'out.json')!r})")
    assert _mapped(setup, DJANGO_SETTINGS_MODULE="console.settings") is False
