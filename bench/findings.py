"""findings.page: the findings page's server time with N findings in PostgreSQL, one filter at a time,
page 1 and page 1000 (keyset), and the query plans checked to use indexes.

Needs DATABASE_URL pointing at PostgreSQL; the rows go to Django's test database for it
(`test_<name>`, kept between runs so the data is generated once). Baseline: the issue's target of
150 ms p95 per filtered page.
"""

from __future__ import annotations

import os
import statistics
import time

from bench import benchmark, report

SIZES = {"small": 100_000, "default": 1_000_000, "large": 3_000_000}
RUNS = 30
TARGET_MS = 150.0


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()


def _populate(n: int) -> None:
    """Generate findings in SQL (generate_series): 20 accounts, catalog types, 90 days, repeats."""
    from django.db import connection

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
    with connection.cursor() as cursor:
        cursor.execute(sql, {"accounts": account_ids, "detectors": detector_ids, "types": types,
                             "ntypes": len(types), "n": n})
        cursor.execute(f"ANALYZE {Finding._meta.db_table}")


FILTERS = {
    "none": {},
    "severity>=7": {"sev_min": "7"},
    "type": {"type": "UnauthorizedAccess:EC2/SSHBruteForce"},
    "region": {"region": "eu-west-1"},
    "account": {"account": "900000000007"},
    "instance_id": {"instance_id": "i-00000abc"},
    "actor_ip": {"ip": "198.51.7.42"},
    "threat_list": {"threat_list": "ProofPoint"},
    "archived": {"status": "archived"},
    "updated_after": {"updated_after": "2099-01-01"},
}


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


@benchmark("findings.page")
def run(size: str) -> None:
    _setup_django()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    if connection.vendor != "postgresql":
        print("bench findings.page skipped: set DATABASE_URL to a PostgreSQL database", flush=True)
        return
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    settings.SECURE_SSL_REDIRECT = False
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    n = SIZES[size]
    started = time.perf_counter()
    _populate(n)
    print(f"# {n} findings ready in {time.perf_counter() - started:.0f}s", flush=True)
    from django.contrib.auth import get_user_model

    from findings import search
    from findings.models import Finding

    user = get_user_model().objects.get(username="bench-admin")
    client = Client()
    client.force_login(user)

    def timed(query: dict) -> list[float]:
        client.get("/findings/", query)  # warm-up
        out = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            response = client.get("/findings/", query)
            out.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
        return out

    worst = worst_db = 0.0
    load = os.getloadavg()[0]
    print(f"# load average {load:.1f} on {os.cpu_count()} CPUs (request times include it)", flush=True)
    for name, params in FILTERS.items():
        p95 = statistics.quantiles(timed(params), n=20)[18]
        ok, db_ms, plan = _plan(user, params)
        worst, worst_db = max(worst, p95), max(worst_db, db_ms)
        print(f"# filter {name:14s} request p95={p95:6.1f} ms  query={db_ms:6.2f} ms  "
              f"plan={'index' if ok else 'SEQ SCAN'}", flush=True)
        if not ok:
            print("#   " + plan.replace("\n", "\n#   "), flush=True)
    report("findings.page.p95_worst_filter", worst, "ms", TARGET_MS)
    report("findings.page.query_worst_filter", worst_db, "ms", TARGET_MS)
    # Page 1000: the cursor of row 49,950 of the default order, then the same request time.
    last = Finding.objects.order_by("-last_seen", "-pk")[49_949]
    cursor = search.encode_cursor(["last_seen:desc", last.last_seen.isoformat(), last.pk])
    first = statistics.quantiles(timed({}), n=20)[18]
    deep = statistics.quantiles(timed({"cursor": cursor}), n=20)[18]
    _, first_db, _ = _plan(user, {})
    _, deep_db, _ = _plan(user, {}, cursor)
    print(f"# page 1 p95={first:.1f} ms (query {first_db:.2f} ms), page 1000 p95={deep:.1f} ms "
          f"(query {deep_db:.2f} ms)", flush=True)
    report("findings.page.page1000_p95", deep, "ms", TARGET_MS)
