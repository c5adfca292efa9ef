"""Socket Mode: the Bolt adapter that holds when a connection drops or Slack refreshes it, and its settings.

Measured with bench/bench_socket_mode.py against the fake Slack's Socket Mode server (seconds; a new connection
after the event, then the ack of a `/crm help` sent on it at once):

    adapter (ping)            refresh: new   ack   abrupt drop: new   ack   silent drop: new   ack
    built-in (10, default)         0.18      2.96         56.66       0.27         51.26        0.25
    built-in (1)                   0.04      3.09          5.94       0.26          6.07        0.26
    websocket-client (10)         10.53      0.01          0.52       0.03          lost (> 90 s)
    websocket-client (1)          10.52      0.01          0.51       0.01          lost (> 90 s)
    aiohttp (10, default)          0.02      0.01         10.00       0.01         20.01        0.02
    aiohttp (3), as below          0.01      0.00          3.01       0.01          6.00        0.01

The built-in client cannot meet Slack's 3 s after a refresh whatever its ping: the old connection's reader holds
the socket lock through its 3 s receive timeout, and the new connection is not used until it lets go.
websocket-client waits out a whole ping interval before it reconnects after a refresh and never notices a silent
drop. The aiohttp client switches at once on a refresh and, through aiohttp's heartbeat (no pong within half the
interval closes the connection) and its own monitor, replaces a dead connection within about two ping intervals.

So: aiohttp, with two changes to Bolt's sync-App adapter. Its handler runs Bolt on the event loop thread, so one
slow listener would stop every other envelope and every ping: here Bolt runs on a thread pool and the loop only
moves frames. Its default web client is the app's synchronous one, which it cannot await: it gets an async one
on the same Slack API URL.
"""

import asyncio
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App
from slack_bolt.adapter.socket_mode.aiohttp import SocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# A ping every 3 s: an abrupt drop is noticed within 3 s and a silent one within about 6 s (heartbeat and
# monitor), inside issue 10's 10 s, for a few bytes a second per connection.
PING_SECONDS = 3.0
# Envelopes in Bolt at once. Each waits only until its listener acks (bot/slack/acks.py), and the listeners
# have their own pool (bot/app.py LISTENER_THREADS), so this matches it rather than the listeners' work.
CONCURRENCY = 16


class RapportSocketModeHandler(SocketModeHandler):
    """Bolt's aiohttp Socket Mode adapter for a sync App, with Bolt off the event loop (see above)."""

    def __init__(self, app: App, app_token: str, *, ping_interval: float = PING_SECONDS,
                 concurrency: int = CONCURRENCY) -> None:
        # Made inside the running loop: the aiohttp client session it opens needs one.
        same_as = app.client  # the app's own Slack API URL and timeout
        web_client = AsyncWebClient(base_url=same_as.base_url, timeout=same_as.timeout)
        super().__init__(app, app_token, web_client=web_client, ping_interval=ping_interval)
        self._bolt = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="socket-mode")

    async def handle(self, client, req: SocketModeRequest) -> None:
        started = time.time()
        response = await asyncio.get_running_loop().run_in_executor(self._bolt, dispatch, self.app, req)
        await send_async_response(client, req, response, started)

    def shutdown(self) -> None:
        self._bolt.shutdown(wait=False, cancel_futures=True)


def dispatch(app: App, req: SocketModeRequest) -> BoltResponse:
    """Bolt's own run_bolt_app, with the envelope id in the request's context: an envelope Slack delivers again
    is handled once, by whichever process gets it (bot/app.py skip_redeliveries)."""
    return app.dispatch(BoltRequest(mode="socket_mode", body=req.payload, headers=build_headers(req),
                                    context={"envelope_id": req.envelope_id}))


def run_socket_mode(app: App, app_token: str, *, url: str | None = None) -> None:
    """Connect (with `url`, the start-up check's apps.connections.open answer, if given) and serve until killed."""

    async def serve() -> None:
        # SIGTERM (systemd, docker stop) ends the connection as Ctrl+C does: closed, not cut.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
        handler = RapportSocketModeHandler(app, app_token)
        socket_client = handler.client
        socket_client.wss_uri = url
        try:
            await handler.start_async()
        finally:
            await handler.close_async()
            handler.shutdown()

    try:
        asyncio.run(serve())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.info("Socket Mode connection closed; Rapport stopped")
