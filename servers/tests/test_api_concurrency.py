import threading

import pytest
from django.conf import settings
from django.db import connections

from audit.models import AuditEvent
from servers.models import McpServer
from tests.factories import AdminFactory, McpServerFactory

IS_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith(".postgresql")
WRITERS = 20


@pytest.mark.postgres_only
@pytest.mark.skipif(
    not IS_POSTGRES,
    reason="SQLite serialises writers with one database lock, so the race cannot happen there",
)
@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_twenty_concurrent_patches_win(make_client):
    admin = AdminFactory()
    server = McpServerFactory()
    barrier = threading.Barrier(WRITERS)
    codes: list[int] = []

    def writer(n: int) -> None:
        client = make_client(admin)
        try:
            barrier.wait(timeout=30)
            response = client.patch(
                f"/api/v1/servers/{server.pk}",
                {"description": f"writer {n}", "version": 1},
                format="json",
            )
            codes.append(response.status_code)
        finally:
            connections.close_all()  # each thread opened its own connection

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(codes) == [200] + [409] * (WRITERS - 1)
    server.refresh_from_db()
    assert server.version == 2
    assert AuditEvent.objects.filter(entity_id=str(server.pk), action="update").count() == 1
    assert McpServer.objects.get(pk=server.pk).description.startswith("writer ")
