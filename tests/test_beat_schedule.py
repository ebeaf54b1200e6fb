"""Beat schedules only our tasks: no celery.backend_cleanup while task results are off."""

import pytest
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from mcpcontrol.celery import app as celery_app


@pytest.mark.django_db(transaction=True)
def test_beat_does_not_schedule_backend_cleanup():
    scheduler = DatabaseScheduler(app=celery_app)  # installs Celery's default entries, as beat does
    scheduler.sync()

    assert celery_app.conf.result_backend is None
    assert "celery.backend_cleanup" not in scheduler.schedule
    assert not PeriodicTask.objects.filter(task="celery.backend_cleanup").exists()
