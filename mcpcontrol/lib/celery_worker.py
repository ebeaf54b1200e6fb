"""The Celery worker's consumer (CELERY_WORKER_CONSUMER), loaded by workers only.

Kept out of mcpcontrol/celery.py, which every process imports: the worker's consumer module
pulls in the whole worker machinery (about 0.3 s of imports).
"""

from celery.worker.consumer import Consumer as CeleryConsumer


class Consumer(CeleryConsumer):
    """Celery's consumer, surviving a broker outage with a task in flight.

    On a lost connection Celery 5.7.0 collect()s the connection, which drops its transport,
    and then closes it (celery PR #10242). Closing the task channel tries to put the
    unacknowledged messages back on the queue through that dropped transport, and the
    AttributeError ("'NoneType' object has no attribute 'hostname'") stops the worker for
    good. So the lost channel does not try: it cannot reach the broker anyway, and with
    Redis's ack emulation the messages stay in its unacked set and come back after the
    visibility timeout, as after a worker crash. The tasks that held them are cancelled
    (CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS): their acks could only
    fail the same way on the dead channel.
    """

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        channel = getattr(self.connection, "_default_channel", None)
        if channel is not None:
            channel.do_restore = False
        super().on_connection_error_after_connected(exc)
