"""Serving: HTTP mode (waitress, /slack/events, /healthz, /metrics, OAuth routes) or Socket Mode."""

import json
import logging

from prometheus_client import make_wsgi_app
from slack_bolt import App
from sqlalchemy import text

from bot.slack.requests import VerifiedHandler

log = logging.getLogger(__name__)

HTTP_THREADS = 16


class WsgiApp:
    """Bolt's WSGI handler (behind the verification in bot/slack/requests.py) plus a health check that also asks the database,
    and this process's metrics."""

    def __init__(self, app: App, engine, *, signing_secret: str | None = None):
        self.bolt = VerifiedHandler(app, signing_secret=signing_secret or app.signing_secret)
        self.engine = engine
        self.metrics = make_wsgi_app()  # the text format (or OpenMetrics when asked for), gzip when accepted

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return self._health(start_response)
        if environ.get("PATH_INFO") == "/metrics" and environ.get("REQUEST_METHOD") == "GET":
            return self.metrics(environ, start_response)
        return self.bolt(environ, start_response)

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


def serve_http(app: App, engine, *, host: str, port: int, threads: int = HTTP_THREADS) -> None:
    from waitress import serve

    log.info("Rapport listening on http://%s:%d (POST /slack/events, GET /healthz, GET /metrics)", host, port)
    serve(WsgiApp(app, engine), host=host, port=port, threads=threads, ident="rapport", _quiet=True)


def serve_socket_mode(app: App, app_token: str, *, url: str | None = None) -> None:
    """`url`: the one apps.connections.open answered at start (bot/slack/startup.py), used for the first
    connection rather than asking Slack for another. The adapter and its settings: bot/slack/socket_mode.py."""
    from bot.slack.socket_mode import run_socket_mode

    log.info("Rapport connecting to Slack in Socket Mode")
    run_socket_mode(app, app_token, url=url)
