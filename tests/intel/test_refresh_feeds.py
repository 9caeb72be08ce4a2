"""manage.py intel_refresh_feeds: local files and s3:// objects replace built-in feeds atomically."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from intel.builtin import FEEDS_BY_NAME, feed_path
from intel.matching import matcher_from_files

EXTERNAL = Path("/work/shared/data/external")


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def run(*args) -> str:
    out = StringIO()
    call_command("intel_refresh_feeds", *args, stdout=out)
    return out.getvalue()


def test_refresh_from_a_local_maltrail_file(var_dir, tmp_path):
    source = tmp_path / "crypto.txt"
    source.write_text("# header\nhttp://203.0.113.77:3333/x\nnew-pool.example.org\n198.51.100.0/24 # range\n")
    before = matcher_from_files().version
    out = run(f"CryptoMiningPools={source}")
    assert "CryptoMiningPools: 3 entries (1 IPs, 1 CIDRs, 1 domains)" in out
    path = feed_path(FEEDS_BY_NAME["CryptoMiningPools"])
    assert path == var_dir / "intel" / "feeds" / "crypto_mining_pools.txt"
    m = matcher_from_files()
    assert m.version != before
    assert m.lookup_domains(["a.new-pool.example.org"])["a.new-pool.example.org"][0].category == "crypto_mining"
    assert "pool.minexmr.com" not in m.lookup_domains(["pool.minexmr.com"])  # the old copy is replaced
    assert "198.51.100.7" in m.lookup_ips(["198.51.100.7"])
    assert "CryptoMiningPools" in run("--list")
    run("--reset", "CryptoMiningPools")
    assert "pool.minexmr.com" in matcher_from_files().lookup_domains(["pool.minexmr.com"])


def test_refresh_from_s3(var_dir, s3):
    s3.put_object(Bucket="vigil-lists", Key="tor.lst", Body=(EXTERNAL / "tor-ip-addresses/tor-exit-nodes.lst").read_bytes())
    out = run("TorExitNodes=s3://vigil-lists/tor.lst")
    assert "TorExitNodes: 1746 entries" in out


def test_refusals(var_dir, tmp_path):
    with pytest.raises(CommandError, match="Unknown feed 'Nope'"):
        run("Nope=/tmp/x")
    with pytest.raises(CommandError, match="only local files and s3:// locations are accepted"):
        run("TorExitNodes=https://example.com/tor.txt")
    with pytest.raises(CommandError, match="expected NAME=LOCATION"):
        run("TorExitNodes")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(CommandError, match="holds no IP address, CIDR or domain"):
        run(f"TorExitNodes={empty}")
    assert not (var_dir / "intel" / "feeds" / "tor_exit_nodes.txt").exists()
