"""The database drops our connections (finding 12): the next request still succeeds.

A PostgreSQL restart or failover closes every connection server-side. The web process
keeps its connection for CONN_MAX_AGE (60 s), so without CONN_HEALTH_CHECKS its next
request ran on the dead connection and answered 500. Terminating the web process's
backend with pg_terminate_backend is the same event for it, without restarting a server
other tests use.
"""

import pytest
from django.db import connection

from tests.faults.conftest import admin_user, production_env, start_web, stop_process

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _terminate_other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def test_the_first_request_after_the_database_dropped_the_connection_succeeds(database_url):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite connections are not kept between requests")
    admin = admin_user()
    web = start_web(production_env(database_url, redis_url=""))
    try:
        headers = {"Authorization": f"Bearer {web.token_for(admin.username)}"}
        before = web.client.get("/api/v1/servers", headers=headers)

        terminated = _terminate_other_backends()
        after = [web.client.get("/api/v1/servers", headers=headers) for _ in range(2)]
    finally:
        stop_process(web.proc)

    assert before.status_code == 200
    assert terminated == 1  # the web process's one kept connection
    assert [r.status_code for r in after] == [200, 200], web.output.text
