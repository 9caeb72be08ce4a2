"""console.findings_p95: whole-request server time of the findings page and of the findings list
API with N findings in PostgreSQL (1,000,000 at full size), p95 in ms, for the default view, a
severity filter, a type filter, an account filter and page 1000 (keyset cursor).

Server time is the request through Django's whole stack in this process (middleware, session,
tenancy, query, serialisation and template rendering), with Django's test client: no network.
Baseline of each view: the same request with PostgreSQL's index scans switched off
(enable_indexscan/bitmapscan/indexonlyscan = off), i.e. the same query without its indexes.
`…page1000_vs_page1`: page 1000 against page 1 (keyset: within 20 %). The other filters' query
plans are checked to use an index and printed as comments.

Needs DATABASE_URL on PostgreSQL; the rows go to `<database>_bench_findings[_<size>]`, kept between
runs so they are generated once.
"""

from __future__ import annotations

import os
import statistics
import time

from bench import benchmark, report
from bench.stack import Skip, use_database

SIZES = {"small": 100_000, "default": 1_000_000, "large": 3_000_000}
# Requests per view: with 20, the p95 is the second slowest, and one scheduling blip on a shared
# machine moved a small run's page-1000 ratio from 0.8 to 1.7.
RUNS = {"small": 40, "default": 40, "large": 40}
BASELINE_RUNS = 4


def _populate(n: int) -> None:
    """Generate findings in SQL (generate_series): 20 accounts, catalog types, 90 days, repeats."""
    from django.db import connection, transaction

    from accounts.models import Account, AccountMembership, Detector, Member, Role
    from findings.catalog import FINDING_TYPES
    from findings.models import Finding
    from tests.factories import AccountFactory

    if Finding.objects.count() >= n:
        return
    Finding.objects.all().delete()
    factory = AccountFactory()
    user = factory.user("bench-admin") if not AccountMembership.objects.filter(user__username="bench-admin").exists() \
        else AccountMembership.objects.filter(user__username="bench-admin").first().user
    admin = Account.objects.filter(aws_account_id="900000000000").first() or factory.account(
        aws_account_id="900000000000", name="Bench admin", admin=user, role=Role.ADMIN)
    accounts = [admin]
    for i in range(1, 20):
        member = Account.objects.filter(aws_account_id=f"9000000000{i:02d}").first() or factory.account(
            aws_account_id=f"9000000000{i:02d}", name=f"Bench member {i}")
        Member.objects.get_or_create(administrator=admin, member=member,
                                     defaults={"email": member.email, "relationship_status": "Enabled"})
        accounts.append(member)
    detectors = {d.account_id: d.id for d in Detector.objects.filter(account__in=accounts)}
    types = sorted(FINDING_TYPES)
    account_ids = [a.id for a in accounts]
    detector_ids = [detectors.get(a) for a in account_ids]
    # Every value below is bound as a parameter; only the table name is formatted in.
    sql = f"""
    INSERT INTO {Finding._meta.db_table} (finding_id, account_id, detector_id, partition, region, type, severity,
      severity_level, title, description, resource_type, resource, service, evidence_events, fingerprint, count,
      first_seen, last_seen, created_at, updated_at, archived, feedback, is_sample, action_type, resource_role,
      resource_id, instance_id, access_key_id, principal_id, user_name, bucket_name, remote_ip, domain, api,
      threat_list_name)
    SELECT md5(g::text || 'f'), (%(accounts)s::bigint[])[1 + g %% 20], (%(detectors)s::bigint[])[1 + g %% 20], 'aws',
      (ARRAY['us-east-1','us-east-1','eu-west-1','us-west-2','ap-southeast-2'])[1 + (g / 7) %% 5],
      (%(types)s::text[])[1 + (g * 7919) %% %(ntypes)s], sev, floor(sev), 'Bench finding ' || g, '', 'Instance',
      jsonb_build_object('resourceType', 'Instance', 'instanceDetails', jsonb_build_object('instanceId', 'i-' || lpad(to_hex(g %% 50000), 8, '0'))),
      '{{}}'::jsonb, '[]'::jsonb, md5(g::text), 1 + g %% 17, ts - interval '3 hours', ts, ts, ts,
      (g %% 10 = 0), '', false, 'NETWORK_CONNECTION', 'TARGET', 'i-' || lpad(to_hex(g %% 50000), 8, '0'),
      'i-' || lpad(to_hex(g %% 50000), 8, '0'), '', '', '', '',
      '198.51.' || (g %% 200) || '.' || (g / 200 %% 250), '', '', CASE WHEN g %% 40 = 0 THEN 'ProofPoint' ELSE '' END
    FROM (SELECT g, (1 + (g * 31) %% 90) / 10.0 + 1 AS sev,
                 now() - make_interval(secs => (g * 7.77)::numeric %% (90 * 86400)) AS ts
          FROM generate_series(1::bigint, %(n)s::bigint) AS g) s
    """  # noqa: S608 - only the table name is formatted in
    table = Finding._meta.db_table
    # Building each index once after the insert is several times faster than maintaining them row by
    # row. In one transaction (PostgreSQL's DDL is transactional): a failure leaves them all in place.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
                       "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", [table, table])
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(sql, {"accounts": account_ids, "detectors": detector_ids, "types": types,
                             "ntypes": len(types), "n": n})
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # check the deferred foreign keys before building
        for _, definition in indexes:
            cursor.execute(definition)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


VIEWS = {
    "default": {},
    "severity": {"sev_min": "7"},
    "type": {"type": "UnauthorizedAccess:EC2/SSHBruteForce"},
    "account": {"account": "900000000007"},
}
OTHER_FILTERS = {  # plans only
    "region": {"region": "eu-west-1"},
    "instance_id": {"instance_id": "i-00000abc"},
    "actor_ip": {"ip": "198.51.7.42"},
    "threat_list": {"threat_list": "ProofPoint"},
    "archived": {"status": "archived"},
    "updated_after": {"updated_after": "2099-01-01"},
}
SURFACES = {"page": "/findings/", "api": "/api/findings/"}
NO_INDEXES = ("enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan")


def _plan(user, params: dict, cursor: str | None = None) -> tuple[bool, float, str]:
    """EXPLAIN ANALYZE of the page query: uses an index, never a sequential scan of findings; its
    execution time in the database (the part that grows with the table)."""
    from django.db import connection

    from findings import search

    page = search.search(actor=user, criteria=search.params_to_criteria(params), cursor=cursor, limit=1)
    del page  # validates the cursor; the query below is the one search() runs for a full page
    rows = search.scoped(actor=user).filter(search.criteria_q(search.params_to_criteria(params)))
    if cursor:
        from django.db.models import Q
        from django.utils.dateparse import parse_datetime

        _, value, pk = search.decode_cursor(cursor)
        value = parse_datetime(value)
        rows = rows.filter(Q(last_seen__lte=value), Q(last_seen__lt=value) | Q(last_seen=value, pk__lt=pk))
    page_qs = rows.select_related("account", "detector").order_by("-last_seen", "-pk")[:51]
    sql, sql_params = page_qs.query.sql_with_params()
    with connection.cursor() as db:
        db.execute("EXPLAIN (ANALYZE) " + sql, sql_params)
        plan = "\n".join(row[0] for row in db.fetchall())
    ms = float(plan.rsplit("Execution Time: ", 1)[1].split(" ", 1)[0])
    return ("Index" in plan and "Seq Scan on findings_finding" not in plan), ms, plan


def _indexes(on: bool) -> None:
    from django.db import connection

    with connection.cursor() as db:
        for setting in NO_INDEXES:
            db.execute(f"SET {setting} = {'on' if on else 'off'}")


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[18]


@benchmark("console.findings_p95")
def run(size: str) -> None:
    try:
        # One database per size: the rows are generated once and kept between runs of that size.
        use_database("bench_findings" if size == "default" else f"bench_findings_{size}")
    except Skip as why:
        print(f"# skipped: {why}", flush=True)
        return
    from django.conf import settings
    from django.test import Client

    # Not django.test.utils.setup_test_environment: its instrumented renderer copies every template
    # context onto the response, work a server does not do, and its cyclic garbage (~30k objects
    # every few dozen pages) brought the collector's full passes (100-200 ms each on this machine)
    # into the timed requests often enough to decide a view's p95 by where they happened to fall.
    settings.ALLOWED_HOSTS = ["*"]
    settings.SECURE_SSL_REDIRECT = False
    n = SIZES[size]
    started = time.perf_counter()
    _populate(n)
    print(f"# {n:,} findings ready in {time.perf_counter() - started:.0f}s", flush=True)
    from django.contrib.auth import get_user_model

    from findings import search
    from findings.models import Finding

    user = get_user_model().objects.get(username="bench-admin")
    client = Client()
    client.force_login(user)

    def timed(path: str, queries: dict[str, dict], runs: int) -> dict[str, list[float]]:
        """Request times per view, the views taking turns: a burst of load from elsewhere on the
        machine falls on all of them alike, so page 1000 against page 1 stays a fair comparison."""
        out: dict[str, list[float]] = {name: [] for name in queries}
        for query in queries.values():
            client.get(path, query)  # warm-up
        for _ in range(runs):
            for name, query in queries.items():
                t0 = time.perf_counter()
                response = client.get(path, query)
                out[name].append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, (path, query, response.status_code)
        return out

    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (request times include it)", flush=True)
    # Page 1000 of the default order: the cursor after row 49,950 (50 per page).
    last = Finding.objects.order_by("-last_seen", "-pk")[49_949]
    views = {**VIEWS, "page1000": {"cursor": search.encode_cursor(["last_seen:desc", last.last_seen.isoformat(),
                                                                     last.pk])}}
    for name, params in views.items():
        ok, db_ms, plan = _plan(user, {k: v for k, v in params.items() if k != "cursor"}, params.get("cursor"))
        print(f"# {name}: query {db_ms:.2f} ms in the database, plan {'index' if ok else 'SEQ SCAN'}", flush=True)
        if not ok:
            print("#   " + plan.replace("\n", "\n#   "), flush=True)
    for surface, path in SURFACES.items():
        p95 = {name: _p95(times) for name, times in timed(path, views, RUNS[size]).items()}
        _indexes(False)
        try:
            without = {name: _p95(times) for name, times in timed(path, views, BASELINE_RUNS).items()}
        finally:
            _indexes(True)
        for name in views:
            report(f"console.findings_p95.{surface}.{name}", p95[name], "ms", without[name])
        report(f"console.findings_p95.{surface}.page1000_vs_page1", p95["page1000"], "ms", p95["default"])
    for name, params in OTHER_FILTERS.items():
        ok, db_ms, plan = _plan(user, params)
        print(f"# filter {name:14s} query={db_ms:6.2f} ms  plan={'index' if ok else 'SEQ SCAN'}", flush=True)
        if not ok:
            print("#   " + plan.replace("\n", "\n#   "), flush=True)
