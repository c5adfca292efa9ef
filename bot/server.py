"""Serving: HTTP mode (waitress, /slack/events, /healthz, /metrics, OAuth routes) or Socket Mode (with /healthz and
/metrics on a port of their own)."""

import json
import logging
import threading

from prometheus_client import make_wsgi_app
from slack_bolt import App
from sqlalchemy import text

from bot.slack.requests import VerifiedHandler

log = logging.getLogger(__name__)

HTTP_THREADS = 16


class OpsApp:
    """A health check that also asks the database, and this process's metrics; anything else is 404."""

    def __init__(self, engine):
        self.engine = engine
        self.metrics = make_wsgi_app()  # the text format (or OpenMetrics when asked for), gzip when accepted

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return self._health(start_response)
        if environ.get("PATH_INFO") == "/metrics" and environ.get("REQUEST_METHOD") == "GET":
            return self.metrics(environ, start_response)
        return self.other(environ, start_response)

    def other(self, environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]

    def _health(self, start_response):
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            status, body = "200 OK", {"ok": True}
        except Exception as exc:  # health checks report, they do not raise
            status, body = "503 Service Unavailable", {"ok": False, "error": type(exc).__name__}
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


class WsgiApp(OpsApp):
    """HTTP mode: Bolt's WSGI handler (behind the verification in bot/slack/requests.py) beside the health check
    and metrics."""

    def __init__(self, app: App, engine, *, signing_secret: str | None = None):
        super().__init__(engine)
        self.bolt = VerifiedHandler(app, signing_secret=signing_secret or app.signing_secret)

    def other(self, environ, start_response):
        return self.bolt(environ, start_response)


def serve_http(app: App, engine, *, host: str, port: int, threads: int = HTTP_THREADS) -> None:
    from waitress import serve

    log.info("Rapport listening on http://%s:%d (POST /slack/events, GET /healthz, GET /metrics)", host, port)
    serve(WsgiApp(app, engine), host=host, port=port, threads=threads, ident="rapport", _quiet=True)


def serve_ops(engine, *, host: str, port: int) -> None:
    """GET /metrics and /healthz on a port of their own, in the background: Socket Mode has no HTTP listener of
    its own for Prometheus or a health check to reach."""
    from waitress import create_server

    server = create_server(OpsApp(engine), host=host, port=port, threads=2, ident="rapport")
    threading.Thread(target=server.run, name="metrics", daemon=True).start()
    log.info("Rapport metrics on http://%s:%d (GET /metrics, GET /healthz)", host, port)


def serve_socket_mode(app: App, app_token: str, *, url: str | None = None) -> None:
    """`url`: the one apps.connections.open answered at start (bot/slack/startup.py), used for the first
    connection rather than asking Slack for another. The adapter and its settings: bot/slack/socket_mode.py."""
    from bot.slack.socket_mode import run_socket_mode

    log.info("Rapport connecting to Slack in Socket Mode")
    run_socket_mode(app, app_token, url=url)
