"""The fake Slack's Socket Mode server, as Slack documents it, on aiohttp (as slack_sdk's own tests do).

`apps.connections.open` (bot/slack/fake.py) answers `ws://127.0.0.1:<port>/link/?ticket=…` with a single-use
ticket; a client that connects gets `hello`. A test then delivers envelopes (`slash_commands`, `interactive`,
`events_api`, each `{"envelope_id", "type", "payload", "accepts_response_payload"[, "retry_attempt",
"retry_reason"]}`), reads the acks the app sends back (`{"envelope_id", "payload"?}`, recorded with the time they
arrived), asks a connection to go (`disconnect` with reason `refresh_requested`, as Slack does every few hours),
or drops it: `drop()` ends the TCP connection without a close frame, `drop(silently=True)` leaves it open but
never answers again (no pongs, no acks read), as a connection that died somewhere on the network does.

Deliberate choices: envelopes go to the newest open connection unless one is named (Slack spreads them over the
app's connections); a ticket is valid once, for 10 minutes; every call from a test waits for the server's loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

TICKET_SECONDS = 600
_WAIT = 5.0  # how long a call from a test waits for the server's loop


@dataclass(frozen=True)
class Delivery:
    envelope_id: str
    type: str
    payload: dict[str, Any]
    connection: int
    at: float  # time.time() when it was sent


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    at: float  # time.time() when it arrived


@dataclass
class _Connection:
    id: int
    team_id: str
    socket: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    opened_at: float
    silenced: asyncio.Event = field(default_factory=asyncio.Event)
    silent: bool = False  # silenced but left open: the handler must not return (aiohttp would close it)
    closed_at: float | None = None


class FakeSocketMode:
    """Started by the fake Slack on the first apps.connections.open; stopped with it."""

    def __init__(self, *, app_id: str) -> None:
        self.app_id = app_id
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tickets: dict[str, tuple[str, float]] = {}  # ticket -> (team, expires at)
        self._connections: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        self._deliveries: list[Delivery] = []
        self._acks: list[Ack] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping: asyncio.Event | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> FakeSocketMode:
        with self._lock:
            if self._thread is not None:
                return self
            ready = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-socket-mode", daemon=True)
            self._thread.start()
        if not ready.wait(_WAIT) or self._port is None:
            raise RuntimeError("the fake Socket Mode server did not start")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_WAIT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_WAIT)
        self._loop = self._thread = None

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, handle_signals=False)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self._port = site._server.sockets[0].getsockname()[1]  # aiohttp names the bound port nowhere public
        ready.set()
        loop.run_forever()
        loop.close()

    async def _shutdown(self) -> None:
        self._stopping.set()
        for connection in list(self._connections.values()):
            connection.silenced.set()
            if connection.transport is not None:
                connection.transport.abort()  # the clients are gone or going: no closing handshake to wait for
        if self._runner is not None:
            await self._runner.cleanup()

    # -- apps.connections.open -------------------------------------------------------------------------------

    def open_url(self, team_id: str) -> str:
        """A new single-use connection URL for an app token of `team_id`."""
        self.start()
        ticket = secrets.token_hex(12)
        with self._lock:
            self._tickets[ticket] = (team_id, time.time() + TICKET_SECONDS)
        return f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}"

    async def _link(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            team_id, expires_at = self._tickets.pop(request.query.get("ticket", ""), (None, 0.0))
        if team_id is None or expires_at < time.time():
            return web.Response(status=401, text="invalid or used ticket")
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        connection = _Connection(next(self._ids), team_id, socket, request.transport, time.time())
        with self._changed:
            self._connections[connection.id] = connection
            self._changed.notify_all()
        await socket.send_json({
            "type": "hello",
            "num_connections": len(self.open_connections()),
            "debug_info": {"host": f"applink-fake-{connection.id}", "build_number": 1,
                           "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        })
        reader = asyncio.ensure_future(self._read(connection))
        silenced = asyncio.ensure_future(connection.silenced.wait())
        await asyncio.wait({reader, silenced}, return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()  # dropped or silenced: nothing on it is read again, so pings go unanswered, acks unseen
        silenced.cancel()
        if connection.silent:
            await self._stopping.wait()
        with self._changed:
            connection.closed_at = time.time()
            self._changed.notify_all()
        return socket

    async def _read(self, connection: _Connection) -> None:
        async for message in connection.socket:  # pings are answered inside aiohttp's receive()
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except ValueError:
                continue
            if isinstance(data, dict) and isinstance(data.get("envelope_id"), str):
                ack = Ack(data["envelope_id"], data.get("payload"), connection.id, time.time())
                with self._changed:
                    self._acks.append(ack)
                    self._changed.notify_all()

    # -- what a test does ------------------------------------------------------------------------------------

    def open_connections(self) -> list[int]:
        with self._lock:
            return [c.id for c in self._connections.values() if c.closed_at is None and not c.silenced.is_set()]

    def wait_connected(self, count: int = 1, *, after: int = 0, timeout: float = 10.0) -> list[int]:
        """Block until `count` connections newer than connection id `after` are open; their ids."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                newer = [c.id for c in self._connections.values()
                         if c.id > after and c.closed_at is None and not c.silenced.is_set()]
                remaining = deadline - time.monotonic()
                if len(newer) >= count or remaining <= 0:
                    return newer
                self._changed.wait(remaining)

    def deliver(self, kind: str, payload: dict[str, Any], *, envelope_id: str | None = None,
                connection: int | None = None, accepts_response_payload: bool | None = None,
                retry_attempt: int = 0, retry_reason: str = "") -> Delivery:
        """Send one envelope (`slash_commands`, `interactive` or `events_api`); the same envelope_id again is a
        redelivery, as Slack makes when an ack did not arrive."""
        if kind not in ("slash_commands", "interactive", "events_api"):
            raise ValueError(f"unknown envelope type {kind!r}")
        target = self._target(connection)
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            # Slack takes an answer in the ack for commands, option loads and view submissions, not for events.
            "accepts_response_payload": (kind != "events_api") if accepts_response_payload is None
            else accepts_response_payload,
        }
        if kind == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        delivery = Delivery(envelope["envelope_id"], kind, payload, target.id, time.time())
        with self._lock:
            self._deliveries.append(delivery)
        self._call(target.socket.send_json(envelope))
        return delivery

    def refresh(self, connection: int | None = None) -> None:
        """Slack's `disconnect` with reason `refresh_requested`: the app should open a new connection."""
        target = self._target(connection)
        self._call(target.socket.send_json({
            "type": "disconnect", "reason": "refresh_requested",
            "debug_info": {"host": f"applink-fake-{target.id}"},
        }))

    def drop(self, connection: int | None = None, *, silently: bool = False) -> int:
        """End a connection without a close frame: abruptly (the TCP connection ends), or silently (it stays open
        and nothing on it is answered again). Returns the connection's id."""
        target = self._target(connection)

        async def cut() -> None:
            target.silent = silently
            target.silenced.set()
            if not silently and target.transport is not None:
                target.transport.abort()

        self._call(cut())
        with self._changed:
            self._changed.notify_all()
        return target.id

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        with self._lock:
            return [a for a in self._acks if envelope_id is None or a.envelope_id == envelope_id]

    def wait_for_ack(self, envelope_id: str, *, count: int = 1, timeout: float = 10.0) -> list[Ack]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [a for a in self._acks if a.envelope_id == envelope_id]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    return found
                self._changed.wait(remaining)

    def _target(self, connection: int | None) -> _Connection:
        with self._lock:
            open_ = [c for c in self._connections.values() if c.closed_at is None and not c.silenced.is_set()]
            if connection is not None:
                open_ = [c for c in open_ if c.id == connection]
        if not open_:
            raise RuntimeError(f"no open Socket Mode connection{f' {connection}' if connection else ''}")
        return open_[-1]

    def _call(self, coroutine) -> Any:
        if self._loop is None:
            raise RuntimeError("the fake Socket Mode server is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_WAIT)
