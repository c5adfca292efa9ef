"""Answering Slack the moment a listener acks, instead of at Bolt's next 10 ms poll.

Bolt hands each listener to its pool and then checks for the ack once, and after that every 10 ms
(`time.sleep(0.01)` in slack_bolt/listener/thread_runner.py): an answer ready after 11 ms leaves at 20.
That adds up to 10 ms to every command, click and picker search (5 on average), more than most of them
spend in the database. This pool's `submit` returns only once the listener has acked (or has finished, or
Bolt's ack timeout has passed), so Bolt's first check finds the ack and the answer leaves at once.

The listener guard in bot/app.py wraps every listener's `ack` so that calling it releases the waiting
request (`AckSignal`); it also releases it at once for listeners Bolt acked itself (events).
"""

import threading
from concurrent.futures import Future, ThreadPoolExecutor

ACK_TIMEOUT = 3.0  # Bolt's own default per listener: Slack gives up after 3 seconds

_current = threading.local()  # the task a pool thread is running: its release event


def release() -> None:
    """The running listener has acked: let its request answer now."""
    event = getattr(_current, "event", None)
    if event is not None:
        event.set()


class AckSignal:
    """Bolt's Ack, releasing the waiting request once it has been called."""

    def __init__(self, ack) -> None:
        self._ack = ack

    def __call__(self, *args, **kwargs):
        try:
            return self._ack(*args, **kwargs)
        finally:
            release()

    def __getattr__(self, name: str):  # `response` and anything else Bolt's Ack has
        return getattr(self._ack, name)


class AckWaitingExecutor(ThreadPoolExecutor):
    """Bolt's listener pool, whose `submit` returns once the listener has acked."""

    def __init__(self, max_workers: int, *, ack_timeout: float = ACK_TIMEOUT, thread_name_prefix: str = "listener"):
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.ack_timeout = ack_timeout

    def submit(self, fn, /, *args, **kwargs) -> Future:
        event = threading.Event()

        def run():
            _current.event = event
            try:
                return fn(*args, **kwargs)
            finally:
                _current.event = None
                event.set()

        future = super().submit(run)
        # Bolt's thread runner checks the ack right after this returns; past the timeout it answers as it
        # always does (its own loop finds the time is up).
        event.wait(self.ack_timeout)
        return future
