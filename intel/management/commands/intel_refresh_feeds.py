"""Refresh built-in feeds from newer copies: `manage.py intel_refresh_feeds NAME=LOCATION ...`.

LOCATION is a local file or an s3://bucket/key object (read with Vigil's own AWS credentials).
Maltrail-style trail files (comments, URLs, ports) and plain lists are both accepted; the result is
normalised to TXT, checked with the TXT parser, and written atomically under
<VIGIL_VAR_DIR>/intel/feeds/, where it wins over the copy shipped in intel/data/. Workers pick it up
on their next matcher version check (the file's mtime and size are part of the version).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from console.errors import ServiceError
from intel.builtin import FEEDS, FEEDS_BY_NAME, feed_path, normalize_feed, override_dir
from intel.parsers import MAX_FILE_BYTES, ListFormatError, decode_file, parse_list
from intel.s3 import read_s3_object


def read_location(location: str) -> bytes:
    if location.startswith("s3://"):
        try:
            return read_s3_object(account=None, uri=location)
        except ServiceError as exc:
            raise CommandError(exc.message)
    if "://" in location:
        raise CommandError(f"{location}: only local files and s3:// locations are accepted.")
    path = Path(location)
    if not path.is_file():
        raise CommandError(f"{location}: no such file.")
    with path.open("rb") as fh:
        return fh.read(MAX_FILE_BYTES + 1)


class Command(BaseCommand):
    help = "Refresh built-in threat feeds from local files or s3:// objects (NAME=LOCATION ...)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("updates", nargs="*", metavar="NAME=LOCATION")
        parser.add_argument("--list", action="store_true", help="show the feeds and the file each one uses")
        parser.add_argument("--reset", metavar="NAME", action="append", default=[],
                            help="drop a refreshed copy and go back to the shipped file")

    def handle(self, *args, **options) -> None:
        if options["list"] or not (options["updates"] or options["reset"]):
            for feed in FEEDS:
                path = feed_path(feed)
                stamp = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")
                self.stdout.write(f"{feed.name:28} {feed.category:14} {stamp}  {path}")
            return
        for name in options["reset"]:
            feed = self._feed(name)
            (override_dir() / feed.filename).unlink(missing_ok=True)
            self.stdout.write(f"{feed.name}: back to the shipped copy")
        for update in options["updates"]:
            name, sep, location = update.partition("=")
            if not sep or not location:
                raise CommandError(f"{update!r}: expected NAME=LOCATION, e.g. TorExitNodes=/tmp/tor-exit-nodes.lst")
            self._refresh(self._feed(name), location)

    def _feed(self, name: str):
        feed = FEEDS_BY_NAME.get(name)
        if feed is None:
            raise CommandError(f"Unknown feed {name!r}; feeds: {', '.join(FEEDS_BY_NAME)}")
        return feed

    def _refresh(self, feed, location: str) -> None:
        try:
            entries = normalize_feed(decode_file(read_location(location)))
            parsed = parse_list("\n".join(entries), "TXT")
        except ListFormatError as exc:
            raise CommandError(f"{feed.name}: {location}: {exc}")
        good = [e for e in entries if e]
        if parsed.entries == 0:
            raise CommandError(f"{feed.name}: {location} holds no IP address, CIDR or domain.")
        target_dir = override_dir()
        target_dir.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        header = f"# Vigil built-in feed {feed.name}, refreshed {now} from {location}.\n# Original source: {feed.source}\n"
        # Written beside the target and renamed: a worker never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=target_dir, prefix=f".{feed.filename}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(header + "\n".join(good) + "\n")
        os.replace(tmp, target_dir / feed.filename)
        self.stdout.write(
            f"{feed.name}: {parsed.entries} entries ({parsed.counts['ip']} IPs, {parsed.counts['cidr']} CIDRs, "
            f"{parsed.counts['domain']} domains), {parsed.rejected_total} lines skipped -> {target_dir / feed.filename}"
        )
