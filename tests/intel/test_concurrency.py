"""Two concurrent creates cannot make a seventh threat list (PostgreSQL: real concurrent transactions)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from console.errors import ConflictError
from intel import services
from intel.models import IntelSet

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers (PostgreSQL)")


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_respect_the_quota(factory):
    admin_user = factory.user()
    account = factory.account(admin=admin_user)
    for i in range(4):
        services.intel_set_create(actor=admin_user, account=account, region="us-east-1", kind="THREAT", name=f"L{i}",
                                  fmt="TXT", content=b"192.0.2.1\n", activate=False)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create(n: int) -> None:
        try:
            barrier.wait()
            services.intel_set_create(actor=admin_user, account=account, region="us-east-1", kind="THREAT",
                                      name=f"Race{n}", fmt="TXT", content=b"192.0.2.1\n", activate=False)
            outcomes.append("created")
        except ConflictError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created", "created", "refused", "refused"]
    slots = sorted(IntelSet.objects.filter(account=account).values_list("slot", flat=True))
    assert slots == [1, 2, 3, 4, 5, 6]
