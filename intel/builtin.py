"""Built-in threat intelligence: the feeds every account gets without uploading anything.

The data ships in intel/data/ as plain TXT lists (one IP, CIDR or domain per line) whose headers
record source, licence and date (intel/data/SOURCES.md). `manage.py intel_refresh_feeds` writes
newer copies under <VIGIL_VAR_DIR>/intel/feeds/, which win over the shipped files.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from intel.matching import CompiledList, IndicatorHit, compile_parsed
from intel.parsers import parse_file, trail_value

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class BuiltinFeed:
    name: str
    category: str
    filename: str
    threat_names: tuple[str, ...] = ()
    source: str = ""

    @property
    def hit(self) -> IndicatorHit:
        return IndicatorHit(list_name=self.name, source="builtin", category=self.category, threat_names=self.threat_names)


_MALTRAIL = "stamparm/maltrail (MIT)"
_TESTER = "awslabs/amazon-guardduty-tester definitions.json (Apache-2.0)"

FEEDS: tuple[BuiltinFeed, ...] = (
    BuiltinFeed("TorExitNodes", "tor_exit", "tor_exit_nodes.txt", ("Tor",), "SecOps-Institute/Tor-IP-Addresses (MIT)"),
    BuiltinFeed("CryptoMiningPools", "crypto_mining", "crypto_mining_pools.txt", ("CryptoMining",), _MALTRAIL),
    BuiltinFeed("SliverC2", "c2", "sliver_c2.txt", ("Sliver",), _MALTRAIL),
    BuiltinFeed("ElfCoinMiner", "crypto_mining", "elf_coinminer.txt", ("ELF.CoinMiner",), _MALTRAIL),
    BuiltinFeed("TeamTNT", "malware", "elf_teamtnt.txt", ("TeamTNT",), _MALTRAIL),
    # Androxgh0st harvests cloud credentials (.env files, AWS keys) and posts them to these hosts:
    # GuardDuty's "drop point", an address holding data stolen by malware.
    BuiltinFeed("Androxgh0st", "drop_point", "androxgh0st.txt", ("Androxgh0st",), _MALTRAIL),
    BuiltinFeed("DGA.Necurs", "dga", "dga_necurs.txt", ("Necurs",), _MALTRAIL),
    BuiltinFeed("DGA.Simda", "dga", "dga_simda.txt", ("Simda",), _MALTRAIL),
    BuiltinFeed("DGA.Ramnit", "dga", "dga_ramnit.txt", ("Ramnit",), _MALTRAIL),
    BuiltinFeed("DGA.Matsnu", "dga", "dga_matsnu.txt", ("Matsnu",), _MALTRAIL),
    BuiltinFeed("DGA.Tinba", "dga", "dga_tinba.txt", ("Tinba",), _MALTRAIL),
    BuiltinFeed("DGA.CryptoLocker", "dga", "dga_cryptolocker.txt", ("CryptoLocker",), _MALTRAIL),
    BuiltinFeed("DGA.Conficker", "dga", "dga_conficker.txt", ("Conficker",), _MALTRAIL),
    BuiltinFeed("DGA.Locky", "dga", "dga_locky.txt", ("Locky",), _MALTRAIL),
    BuiltinFeed("IPsumLevel3", "malicious", "ipsum_level3.txt", (), "stamparm/ipsum levels/3.txt (Unlicense)"),
    # Never-routed destinations (bogons no VPC uses, RFC 6666 discard prefix): traffic to them is
    # silently discarded, GuardDuty's "black hole".
    BuiltinFeed("Bogons", "blackhole", "blackhole_bogons.txt", ("Blackhole",), "IANA special-purpose registries (facts)"),
    BuiltinFeed("KnownScanners", "scanner", "mass_scanners.txt", ("Scanner",), _MALTRAIL),
    # AWS's own test domains: GuardDuty reports them so that its tester can prove each finding type.
    BuiltinFeed("GuardDutyTester.C2", "c2", "gd_tester_c2.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.Crypto", "crypto_mining", "gd_tester_crypto.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.CryptoReputation", "crypto_reputation", "gd_tester_crypto_rep.txt", ("GuardDutyTester",),
                _TESTER),
    BuiltinFeed("GuardDutyTester.DGA", "dga", "gd_tester_dga.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.Blackhole", "blackhole", "gd_tester_blackhole.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.DriveBy", "drive_by", "gd_tester_driveby.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.DropPoint", "drop_point", "gd_tester_droppoint.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.Phishing", "phishing", "gd_tester_phishing.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.Abused", "abused", "gd_tester_abused.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.Malicious", "malicious", "gd_tester_malicious.txt", ("GuardDutyTester",), _TESTER),
    BuiltinFeed("GuardDutyTester.Suspicious", "suspicious", "gd_tester_suspicious.txt", ("GuardDutyTester",), _TESTER),
)

FEEDS_BY_NAME = {f.name: f for f in FEEDS}


def override_dir() -> Path:
    """Where refreshed feed copies live (var/, never the source tree)."""
    try:
        from django.conf import settings

        if settings.configured:
            return Path(settings.VAR_DIR) / "intel" / "feeds"
    except ImportError:  # pragma: no cover - Django is always installed here
        pass
    return Path(os.environ.get("VIGIL_VAR_DIR", Path(__file__).resolve().parent.parent / "var")) / "intel" / "feeds"


def feed_path(feed: BuiltinFeed) -> Path:
    refreshed = override_dir() / feed.filename
    return refreshed if refreshed.is_file() else DATA_DIR / feed.filename


def normalize_feed(text: str) -> list[str]:
    """A maltrail-style trail file (comments, URLs, ports) -> distinct TXT entries, in order."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        value = trail_value(line)
        if value and not value.startswith("/"):
            seen.setdefault(value, None)
    return list(seen)


_lock = threading.Lock()
_cache: dict[str, tuple[tuple[str, float, int], CompiledList, int]] = {}


def _stamp(path: Path) -> tuple[str, float, int]:
    st = path.stat()
    return str(path), st.st_mtime, st.st_size


def builtin_sources() -> list[tuple[IndicatorHit, CompiledList]]:
    """Every feed compiled, cached per process and re-read only when its file changes."""
    out = []
    with _lock:
        for feed in FEEDS:
            path = feed_path(feed)
            stamp = _stamp(path)
            cached = _cache.get(feed.name)
            if cached is None or cached[0] != stamp:
                parsed = parse_file(str(path), "TXT")
                cached = (stamp, compile_parsed(parsed), parsed.entries)
                _cache[feed.name] = cached
            out.append((feed.hit, cached[1]))
    return out


def builtin_entry_counts() -> dict[str, int]:
    """Entries per feed as listed in its file (before merging adjacent addresses)."""
    builtin_sources()
    with _lock:
        return {name: cached[2] for name, cached in _cache.items()}


def builtin_version() -> str:
    """Changes whenever a feed file is replaced (cheap: stat calls only)."""
    digest = hashlib.sha256()
    for feed in FEEDS:
        digest.update(repr(_stamp(feed_path(feed))).encode())
    return digest.hexdigest()[:16]
