"""Enqueue once: a sweep runs once per beat interval however many times it is enqueued, and
a lost batch or worker holds the next sweep back no longer than a batch's time limit."""

from collections.abc import Iterator

import pytest
import time_machine
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from mcpcontrol.celery import app
from servers import services, tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_cache(private_cache: None) -> None:
    pass


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run enqueued tasks inline: never send them to a broker other test runs consume."""
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


def every(seconds: int, *, task: str = "servers.tasks.health_sweep", enabled: bool = True) -> None:
    """A beat schedule row, as ensure_schedules or the admin makes it."""
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=seconds, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name=f"{task} every {seconds}", task=task, interval=interval, enabled=enabled
    )


@pytest.mark.emulator_gap(
    "SecantusDB 0.7.0b3 answers a values_list() across a join ($lookup: interval__every,"
    " interval__period) with the joined row's id, not the field"
)
def test_a_second_beat_sweeping_right_after_the_first_is_skipped(
    make_server, sdk_http_url, eager_tasks
) -> None:
    every(60)
    make_server(transport_type="streamable_http", url=sdk_http_url)

    first = tasks.health_sweep()  # runs its batch inline: the sweep is over when it returns
    second = tasks.health_sweep()

    assert (first["batches"], first.get("skipped")) == (1, None)
    assert (second["batches"], second["skipped"]) == (0, "recent")


def test_the_next_sweep_runs_once_three_quarters_of_the_interval_passed(make_server) -> None:
    make_server()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = services.health_sweep_plan(concurrency=1, time_limit=20, spacing=45)
        services.servers_release_claims(server_ids=first.batches[0], sweep=True, time_limit=20)
        clock.shift(44)
        early = services.health_sweep_plan(concurrency=1, time_limit=20, spacing=45)
        clock.shift(2)
        on_time = services.health_sweep_plan(concurrency=1, time_limit=20, spacing=45)

    assert (early.skipped, on_time.skipped) == ("recent", "")
    assert len(on_time.batches) == 1


def test_a_batch_lost_with_its_pool_process_is_counted_off_its_sweep(make_server) -> None:
    ids = [make_server().id for _ in range(2)]
    plan = services.health_sweep_plan(concurrency=1, time_limit=20)  # a batch per server

    services.servers_check_batch(server_ids=plan.batches[0], concurrency=1, sweep=True)
    services.servers_release_claims(server_ids=plan.batches[1], sweep=True, time_limit=20)

    assert sorted(i for batch in plan.batches for i in batch) == ids
    assert len(services.health_sweep_plan(concurrency=1, time_limit=20).batches) == 2


def test_a_sweep_lost_with_its_worker_holds_the_next_back_one_batch_time_limit(
    make_server, settings
) -> None:
    """Nothing counts a batch off when the whole worker dies: the pending marker expires
    `time_limit` after the last batch started or ended, not after the whole sweep's worth."""
    settings.MCPCONTROL_HEALTH_INTERVAL_SECONDS = 5
    ids = [make_server().id for _ in range(3)]
    with time_machine.travel(timezone.now(), tick=False) as clock:
        plan = services.health_sweep_plan(concurrency=1, time_limit=20)  # 3 batches
        clock.shift(15)
        services.servers_check_batch(server_ids=plan.batches[0], concurrency=1, sweep=True,
                                     time_limit=20)  # fmt: skip
        clock.shift(15)  # 30 s after the plan, 15 s after the last batch ended
        held = services.health_sweep_plan(concurrency=1, time_limit=20)
        clock.shift(7)  # the other two batches were lost with their worker
        resumed = services.health_sweep_plan(concurrency=1, time_limit=20)

    assert len(plan.batches) == 3 and held.skipped == "pending"
    assert sorted(i for batch in resumed.batches for i in batch) == ids


@pytest.mark.emulator_gap(
    "SecantusDB 0.7.0b3 answers a values_list() across a join ($lookup: interval__every,"
    " interval__period) with the joined row's id, not the field"
)
def test_the_sweep_interval_is_the_shortest_enabled_beat_schedule_of_the_sweep() -> None:
    every(300)
    every(90, task="servers.tasks.refresh_all")  # the old name, for one release
    every(10, enabled=False)
    every(5, task="credentials.tasks.grant_refresh_due")

    assert services.health_sweep_interval() == 90


def test_without_an_interval_schedule_sweeps_are_not_spaced() -> None:
    assert services.health_sweep_interval() == 0
