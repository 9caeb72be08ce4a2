"""Flow frames' encoded addresses (ingest.rules._net.addresses_encoded): the same values, read the
same way by orientation, on categories of each frame's own."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import polars as pl

from ingest import synthetic as syn
from ingest.parsers import ParseStats
from ingest.parsers.flow import iter_flow
from ingest.rules._net import ENCODED_COLUMNS, addresses_encoded, orient

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _frame(seed: int, extra: list[str] = ()) -> pl.DataFrame:
    lines = syn.benign_flow(n=3000, account="123456789012", start=T0, seed=seed) + list(extra)
    return pl.concat(list(iter_flow(io.BytesIO(syn.flow_body(lines)), ParseStats())))


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String))


def test_encoding_keeps_every_value_and_orientation_reads_it_as_text():
    # Both sides private (VPC-internal: decided by the interface's most frequent address), and IPv6.
    extra = [syn.flow_line(account="123456789012", eni="eni-0000000000000000a", src="10.0.0.9", dst="10.0.3.4",
                           sport=40000 + i, dport=5432, start=T0) for i in range(5)]
    extra += [syn.flow_line(account="123456789012", eni="eni-0000000000000000b", src="2600:1f18::5",
                            dst="2001:db8::7", sport=443, dport=51000, start=T0)]
    plain = _frame(3, extra)
    encoded = addresses_encoded(plain)
    assert all(isinstance(encoded.schema[c], pl.Categorical) for c in ENCODED_COLUMNS)
    assert _as_text(encoded).equals(plain)
    assert _as_text(orient(encoded)).equals(_as_text(orient(plain)))


def test_each_frame_has_categories_of_its_own():
    first, second = addresses_encoded(_frame(1)), addresses_encoded(_frame(2))
    assert first.schema["srcaddr"] != second.schema["srcaddr"]
    # Within a frame both sides share theirs: choosing a side keeps the type.
    assert first.schema["srcaddr"] == first.schema["dstaddr"]
    assert isinstance(orient(first).schema["remote"], pl.Categorical)
