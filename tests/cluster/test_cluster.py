"""Several machines agreeing (issue 11): two web processes, two workers and a beat on one
PostgreSQL database and one Redis (see conftest.py for how they are started).

The scenarios share one cluster and run in this order; each one waits for the state it
needs (by polling with a deadline), so any of them also runs alone (`-k`).
"""

import itertools
import os
import signal
import time
from collections import Counter

import pytest

from tests.cluster.conftest import (
    INIT_TIMEOUT_MS,
    INTERVAL,
    LEASE_SECONDS,
    TIMEOUT_MS,
    Cluster,
    Process,
    log_tail,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# The upstream holds every check's tools/list this long while a test kills a worker.
HOLD_SECONDS = 2
SWEEP_TASK = "servers.tasks.health_sweep"
SWEEP_SENT = "Scheduler: Sending due task Health checks"  # beat's log line
BEAT_STARTUP = 10  # seconds a beat takes to start, at most, on a busy machine


def enabled_servers(cluster: Cluster) -> set[str]:
    listed = cluster.webs[1].call("GET", "/api/v1/servers", params={"per_page": 100})
    assert listed.status_code == 200, listed.text
    return {s["server_name"] for s in listed.json()["servers"] if s["enabled"]}


def sweeps(cluster: Cluster, *, since: float, count: int) -> list[Counter[str]]:
    """The checks of the first `count` sweeps planned after `since`, a Counter of server
    names per sweep. A sweep's checks are those between its start and the next sweep's: a
    new sweep is only planned once every batch of the previous one has ended."""
    starts = wait_for(
        lambda: (s := cluster.sweep_starts(since))[count:] and s,
        timeout=(count + 2) * INTERVAL + 30, what=f"{count + 1} sweeps planned\n{log_tail(cluster)}",
    )  # fmt: skip
    checks = cluster.checks()
    return [
        Counter(name for name, at in checks if start <= at < end)
        for start, end in itertools.pairwise(starts[: count + 1])
    ]


def hold_checks_until_both_workers_are_mid_check(cluster: Cluster) -> None:
    """Each worker runs one batch at a time, 2 checks at once: 3 held means both are in one.
    Polled often: the caller kills a worker right after, while both still are."""
    cluster.slow(HOLD_SECONDS)
    wait_for(lambda: cluster.held() >= 3, timeout=3 * INTERVAL + 30, every=0.02,
             what=f"both workers mid-check\n{log_tail(cluster)}")  # fmt: skip


def checked_after(cluster: Cluster, moment: float) -> set[str]:
    return {name for name, at in cluster.checks() if at > moment}


def test_a_server_created_through_one_web_process_is_seen_fresh_through_the_other(
    cluster: Cluster,
) -> None:
    web1, web2 = cluster.webs
    body = {"server_name": "fresh", "url": f"{cluster.peer_url}/s/fresh/mcp",
            "init_timeout": INIT_TIMEOUT_MS, "timeout": TIMEOUT_MS}  # fmt: skip
    created = web1.call("POST", "/api/v1/servers", json=body)
    assert created.status_code == 201, created.text
    server = created.json()["id"]

    seen = web2.call("GET", f"/api/v1/servers/{server}")
    # The check runs on a worker; 409 while a sweep's worker happens to be checking it.
    refreshed = wait_for(
        lambda: (r := web1.call("POST", f"/api/v1/servers/{server}/refresh")).status_code == 200
        and r, timeout=30, what="a check through web1",
    )  # fmt: skip
    fresh = web2.call("GET", f"/api/v1/servers/{server}").json()

    assert seen.status_code == 200 and seen.json()["server_name"] == "fresh"
    assert refreshed.json()["outcome"] == "healthy"
    assert fresh["health"]["outcome"] == "healthy"
    assert fresh["health"]["checked_at"] >= refreshed.json()["last_checked"]
    assert (fresh["connection_state"], fresh["num_tools"]) == ("connected", 3)


def test_every_enabled_server_is_checked_once_per_sweep(cluster: Cluster) -> None:
    expected = Counter(enabled_servers(cluster))

    found = sweeps(cluster, since=time.time(), count=2)

    assert found == [expected, expected]
    assert "off" not in {name for name, _ in cluster.checks()}  # disabled: never checked


def start_beat_half_an_interval_after_the_first(cluster: Cluster) -> Process:
    """A second beat whose sweeps fall half an interval after the first beat's. (In phase,
    the first sweep's pending marker alone would skip its twin.) Its first sweep is due
    BEAT_STARTUP seconds from now at the earliest, so that it is up by then."""
    sent = wait_for(lambda: cluster.beats[0].events(SWEEP_SENT), timeout=3 * INTERVAL,
                    what="the first beat sending a sweep")  # fmt: skip
    due = sent[-1] + INTERVAL / 2
    while due < time.time() + BEAT_STARTUP:
        due += INTERVAL
    cluster.set_last_run(SWEEP_TASK, at=due - INTERVAL)  # what the new beat reads at start
    return cluster.start_beat("beat2")


def test_a_second_beat_does_not_double_the_checks(cluster: Cluster) -> None:
    expected = Counter(enabled_servers(cluster))
    beat2 = start_beat_half_an_interval_after_the_first(cluster)
    try:
        (since,) = wait_for(lambda: beat2.events(SWEEP_SENT)[:1], timeout=BEAT_STARTUP + 30,
                            what=f"the second beat sending a sweep\n{beat2.output.text}")  # fmt: skip
        found = sweeps(cluster, since=since, count=3)
        starts = cluster.sweep_starts(since)
        sent_by_beat2 = len(beat2.events(SWEEP_SENT))
    finally:
        beat2.stop()
        cluster.beats.remove(beat2)

    assert found == [expected] * 3
    # Each sweep of the second beat that ran would start half an interval after one of the
    # first beat's; the spacing keeps sweeps 3/4 of an interval apart at least.
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) > 0.6 * INTERVAL, gaps
    assert sent_by_beat2 >= 3  # it kept enqueueing sweeps all along: they were skipped
    assert cluster.sweeps_skipped(since) >= 2


def test_a_worker_process_killed_mid_check_frees_its_servers_for_the_next_sweep(
    cluster: Cluster,
) -> None:
    """SIGKILL of a pool process (as the OOM killer does): its worker releases the claims at
    once, well before their lease, and counts the batch off so the next sweep is not held."""
    worker = cluster.workers[0]
    (child,) = worker.children()
    hold_checks_until_both_workers_are_mid_check(cluster)
    claimed = cluster.claims()  # before: the worker may release its child's claims at once
    os.kill(child, signal.SIGKILL)
    killed_at = time.time()
    cluster.slow(0)

    wait_for(lambda: not set(cluster.claims().values()) & set(claimed.values()),
             timeout=LEASE_SECONDS / 2, what=f"claims released\n{log_tail(cluster)}")  # fmt: skip
    wait_for(lambda: set(claimed) <= checked_after(cluster, killed_at), timeout=4 * INTERVAL,
             what=f"{sorted(claimed)} checked again\n{log_tail(cluster)}")  # fmt: skip
    assert len(set(claimed.values())) == 2  # both workers held a batch when it died


def test_a_machine_killed_mid_sweep_loses_no_server(cluster: Cluster) -> None:
    """SIGKILL of a whole worker (main and pool process, as a machine dying): nothing
    releases its claims, so its servers wait out their lease; the next sweep after that
    checks them, and nothing stays claimed."""
    machine = cluster.workers[1]
    hold_checks_until_both_workers_are_mid_check(cluster)
    os.killpg(machine.proc.pid, signal.SIGKILL)
    killed_at = time.time()
    claimed = set(cluster.claims().values())  # the dead machine's can no longer change
    cluster.slow(0)

    # The live worker ends its batch and releases its claim; the dead one's stays.
    wait_for(lambda: len(set(cluster.claims().values()) & claimed) <= 1,
             timeout=LEASE_SECONDS / 2, what=f"the live claim released\n{log_tail(cluster)}")  # fmt: skip
    dead = {name for name, token in cluster.claims().items() if token in claimed}
    assert dead  # the killed machine held servers when it died
    wait_for(lambda: dead <= checked_after(cluster, killed_at),
             timeout=LEASE_SECONDS + 3 * INTERVAL + 20,
             what=f"{sorted(dead)} checked again\n{log_tail(cluster)}")  # fmt: skip
    wait_for(lambda: not set(cluster.claims().values()) & claimed, timeout=INTERVAL,
             what="the dead machine's claims gone")  # fmt: skip
    assert machine.proc.wait(timeout=10) == -signal.SIGKILL
