"""UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B: one identity signs in to the console successfully
from places far apart at about the same time (faster than anyone travels).

Locations are countries (geoip2fast's data, shipped with the package) placed at a representative
point (ingest/data/country_points.tsv); two successful sign-ins of the same identity within
`window_minutes` whose points are at least `min_distance_km` apart make the finding. Recent sign-ins
per identity are kept in ctx.state so that the pair may span log objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from ingest.rules import CLOUDTRAIL, Case, Detection, RuleContext, Setting, rule
from ingest.rules._ct import country_of, ct_detection, envelope, event, principal_name, rows_of

LOGIN_TYPE = "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B"
POINTS_FILE = Path(__file__).resolve().parent.parent / "data" / "country_points.tsv"
KEEP = 20


@cache
def country_points() -> dict[str, tuple[float, float]]:
    out = {}
    for line in POINTS_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            code, lat, lon = line.split("\t")
            out[code] = (float(lat), float(lon))
    return out


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))


def _login(ip: str, t: str, user: str = "alice", ok: bool = True) -> dict[str, Any]:
    return event("ConsoleLogin", source="signin.amazonaws.com", ip=ip, user=user, t=t,
                 agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0",
                 response={"ConsoleLogin": "Success" if ok else "Failure"},
                 additionalEventData={"MFAUsed": "No", "MobileVersion": "No", "LoginTo": "https://console.aws.amazon.com"})


US_IP, DE_IP, DE_IP2, FR_IP, JP_IP = "8.8.8.8", "85.214.132.117", "46.4.0.1", "90.84.0.1", "133.242.0.1"


def _cases() -> list[Case]:
    return [
        Case("United States then Japan ten minutes later", envelope(
            _login(US_IP, "2024-05-01T12:00:00Z"), _login(JP_IP, "2024-05-01T12:10:00Z")),
             expect=(LOGIN_TYPE,), expect_severity={LOGIN_TYPE: 5.0}),
        Case("Germany then the United States within the hour", envelope(
            _login(DE_IP, "2024-05-01T12:00:00Z"), _login(US_IP, "2024-05-01T12:50:00Z")), expect=(LOGIN_TYPE,)),
        Case("two German addresses", envelope(_login(DE_IP, "2024-05-01T12:00:00Z"), _login(DE_IP2, "2024-05-01T12:05:00Z"))),
        Case("Germany then France (neighbours)", envelope(
            _login(DE_IP, "2024-05-01T12:00:00Z"), _login(FR_IP, "2024-05-01T12:20:00Z"))),
        Case("United States then Japan a day later (travel)", envelope(
            _login(US_IP, "2024-05-01T00:00:00Z"), _login(JP_IP, "2024-05-02T02:00:00Z"))),
        Case("two different users", envelope(
            _login(US_IP, "2024-05-01T12:00:00Z", user="alice"), _login(JP_IP, "2024-05-01T12:05:00Z", user="bob"))),
        Case("the far sign-in failed", envelope(
            _login(US_IP, "2024-05-01T12:00:00Z"), _login(JP_IP, "2024-05-01T12:05:00Z", ok=False))),
    ]


@rule(source=CLOUDTRAIL, finding_types=(LOGIN_TYPE,), cases=_cases(),
      settings={"window_minutes": Setting(120, "sign-ins this close in time count as 'at about the same time'"),
                "min_distance_km": Setting(3000, "places at least this far apart count as distant")},
      state="per identity: its recent successful console sign-ins (time, address, country)")
def console_login_distant(frame: pl.DataFrame, ctx: RuleContext) -> Iterable[Detection]:
    logins = frame.filter((pl.col("event_name") == "ConsoleLogin")
                          & (pl.col("response_elements").str.json_path_match("$.ConsoleLogin") == "Success")
                          ).with_columns(pl.coalesce("ui_arn", "ui_principal_id").alias("who"))
    logins = logins.filter(pl.col("who").is_not_null())
    if logins.is_empty():
        return
    window = timedelta(minutes=ctx.setting("window_minutes"))
    min_km = float(ctx.setting("min_distance_km"))
    points = country_points()
    users = sorted(set(logins["who"].to_list()))
    recent: dict[str, list[list[Any]]] = {k.split(":", 1)[1]: v for k, v in
                                          ctx.state_get([f"logins:{u}" for u in users]).items()}
    found: dict[str, list[dict[str, Any]]] = {}
    far: dict[str, tuple[str, str, float]] = {}
    for row in rows_of(logins):
        code, _ = country_of(row["source_ip"])
        if code not in points:
            continue
        history = recent.setdefault(row["who"], [])
        when: datetime = row["event_time"]
        history[:] = [h for h in history if when - datetime.fromisoformat(h[0]) <= window]
        for earlier_time, earlier_ip, earlier_code in history:
            km = distance_km(points[earlier_code], points[code])
            if km >= min_km:
                found.setdefault(row["who"], []).append(row)
                far[row["who"]] = (earlier_code, code, km)
                row["_earlier"] = {"time": earlier_time, "ip": earlier_ip, "country": earlier_code}
                break
        history.append([when.isoformat(), row["source_ip"], code])
        del history[:-KEEP]
    for user in users:
        if user in recent:
            ctx.state_put(f"logins:{user}", recent[user])
    for user, hits in found.items():
        latest = hits[-1]
        a, b, km = far[user]
        yield ct_detection(
            hits, LOGIN_TYPE, dedup_key=user,
            title=f"{principal_name(latest)} signed in to the console from distant places at about the same time.",
            description=f"{principal_name(latest)} signed in successfully from {a} and from {b} (about {km:.0f} km "
                        f"apart) within {int(window.total_seconds() // 60)} minutes; someone else may hold the password.",
            extra_info={"locations": [latest["_earlier"], {"time": latest["event_time"].isoformat(),
                                                           "ip": latest["source_ip"], "country": b}],
                        "distanceKm": round(km)},
        )
