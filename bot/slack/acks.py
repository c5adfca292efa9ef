"""Answering Slack the moment a listener acks, instead of at Bolt's next 10 ms poll.

Bolt hands each listener to its pool and then checks for the ack once, and after that every 10 ms
(`time.sleep(0.01)` in slack_bolt/listener/thread_runner.py): an answer ready after 11 ms leaves at 20.
That adds up to 10 ms to every command, click and picker search (5 on average), more than most of them
spend in the database. This pool's `submit` returns only once the request's ack has been given (or the
listener has ended, or Bolt's ack timeout has passed), so Bolt's first check finds the ack and the answer
leaves at once.

The request's ack is wrapped on the request thread before any listener runs (`wait_for_ack`, called by a
middleware in bot/app.py: Bolt runs middleware and then the listener on the same thread); Bolt calls `submit` on that same thread, which finds it there. A request already
acked (events: Bolt acks them itself) or dispatched without the middleware is not waited for at all, even
when every pool thread is busy.
"""

import contextvars
import threading
from concurrent.futures import Future, ThreadPoolExecutor

ACK_TIMEOUT = 3.0  # Bolt's own default per listener: Slack gives up after 3 seconds

_request = threading.local()  # the request this thread is dispatching: its AckSignal


class AckSignal:
    """Bolt's Ack for one request, telling the waiting request thread when it has been given."""

    def __init__(self, ack) -> None:
        self._ack = ack
        self.settled = threading.Event()  # acked, or the listener ended without acking

    def __call__(self, *args, **kwargs):
        try:
            return self._ack(*args, **kwargs)
        finally:
            self.settled.set()

    def __getattr__(self, name: str):  # `response` and anything else Bolt's Ack has
        return getattr(self._ack, name)


def wait_for_ack(context) -> AckSignal:
    """The request being dispatched on this thread answers when its ack is given: its ack (context["ack"], which
    listeners and Bolt's runner both use) signals the pool's next `submit` on this thread."""
    signal = AckSignal(context.ack)
    context["ack"] = signal
    _request.signal = signal
    return signal


def after_answer(executor, fn, /, *args) -> Future:
    """Run `fn` on the listener pool as work of its own, after this request has been answered (a middleware that
    answers by itself): the pool does not wait for it to ack."""
    _request.signal = None
    return executor.submit(fn, *args)


class AckWaitingExecutor(ThreadPoolExecutor):
    """Bolt's listener pool, whose `submit` returns once the request's listener has acked."""

    def __init__(self, max_workers: int, *, ack_timeout: float = ACK_TIMEOUT, thread_name_prefix: str = "listener"):
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self.ack_timeout = ack_timeout

    def submit(self, fn, /, *args, **kwargs) -> Future:
        signal: AckSignal | None = getattr(_request, "signal", None)
        _request.signal = None  # one listener per request: a later submit on this thread is not this request's
        # The listener logs as part of the request that submitted it (its workspace and request id: bot/logs.py).
        context = contextvars.copy_context()
        if signal is None or signal.response is not None or signal.settled.is_set():
            return super().submit(context.run, fn, *args, **kwargs)  # nothing to wait for: not a request, or answered

        def run():
            try:
                return fn(*args, **kwargs)
            finally:
                signal.settled.set()

        future = super().submit(context.run, run)
        # Bolt's thread runner checks the ack right after this returns; past the timeout it answers as it
        # always does (its own loop finds the time is up).
        signal.settled.wait(self.ack_timeout)
        return future
