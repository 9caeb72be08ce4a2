"""python manage.py analyze PATH [PATH…] [--threat-list FILE]… [--trusted-list FILE] [--format json]
[--output FILE] [--store]: forensics on historical logs, with the same rules as the workers."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest.offline import LocalFile, OfflineRun, analyze_paths, findings_document


def list_format(path: str) -> str:
    """A list file's format from its content (intel's sniffing), TXT when nothing else fits."""
    from intel import parsers

    sniff = getattr(parsers, "_sniff", None)
    text = parsers.decode_file(Path(path).read_bytes()[:65536])
    return (sniff(text) if sniff else None) or "TXT"


class Progress:
    """A one-line progress bar on stderr (stdout stays clean for the JSON)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.started, self.last = stream, time.monotonic(), 0.0

    def __call__(self, index: int, total: int, local: LocalFile, run: OfflineRun) -> None:
        now = time.monotonic()
        if index < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        done = int(width * index / max(total, 1))
        rate = run.records / max(now - self.started, 1e-6)
        self.stream.write(f"\ranalyze [{'#' * done}{'.' * (width - done)}] {index}/{total} files "
                          f"{run.records:,} records ({rate:,.0f}/s) {len(run.skipped)} skipped")
        if index == total:
            self.stream.write("\n")
        self.stream.flush()


class Command(BaseCommand):
    help = "Analyse local CloudTrail, VPC flow and Resolver query logs; print GuardDuty findings as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Files or folders (searched recursively).")
        parser.add_argument("--threat-list", action="append", default=[], metavar="FILE",
                            help="A threat list (TXT, STIX, OTX_CSV, …; the file name is the list name). Repeatable.")
        parser.add_argument("--trusted-list", metavar="FILE", help="A trusted IP list: its addresses raise nothing.")
        parser.add_argument("--format", choices=["json"], default="json")
        parser.add_argument("--output", metavar="FILE", help="Write the JSON here instead of standard output.")
        parser.add_argument("--store", action="store_true",
                            help="Also store the findings in the database (accounts and detectors created as needed).")
        parser.add_argument("--no-builtin", action="store_true", help="Leave out the built-in threat feeds.")

    def handle(self, *args: Any, **options: Any) -> None:
        from ingest.allocator import reuse_freed_memory_if_configured
        from intel.matching import matcher_from_files

        reuse_freed_memory_if_configured()
        for path in options["paths"]:
            if not Path(path).exists():
                raise CommandError(f"No such file or folder: {path}")
        try:
            threat_lists = [(Path(p).stem, p, list_format(p)) for p in options["threat_list"]]
            trusted = None
            if options["trusted_list"]:
                p = options["trusted_list"]
                trusted = (Path(p).stem, p, list_format(p))
            matcher = matcher_from_files(threat_lists=threat_lists, trusted_list=trusted,
                                         include_builtin=not options["no_builtin"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read a list: {exc}") from exc
        run = analyze_paths(options["paths"], matcher=matcher, store=options["store"],
                            progress=Progress(self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr))
        for path, reason in run.skipped:
            self.stderr.write(f"skipped {path}: {reason}")
        text = json.dumps(findings_document(run.findings), indent=2, default=str)
        if options["output"]:
            Path(options["output"]).write_text(text + "\n")
        else:
            self.stdout.write(text)
        self.stderr.write(f"{len(run.findings)} findings from {run.files} files, {run.records:,} records "
                          f"({run.malformed} malformed)" + (", stored" if options["store"] else ""))
