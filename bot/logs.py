"""Log lines for people (text) or for a log pipeline (one JSON object a line), with the workspace and the request
they belong to, and Slack tokens masked whatever a library puts in a message."""

import contextvars
import logging
import re
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

# Set while Rapport handles one request from Slack (RapportApp.dispatch); Bolt's listener pool copies them
# into the listener's thread (bot/slack/acks.py).
workspace_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("workspace", default=None)
request_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Bot, user, app-level, refresh and configuration tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxe-…, xapp-.
TOKEN = re.compile(r"\b(xox[a-z](?:\.[a-z]+)?-|xapp-)[A-Za-z0-9-]+")
JSON_FIELDS = ("time", "level", "logger", "message", "workspace", "request_id", "exc_info")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def mask_tokens(text: str) -> str:
    return TOKEN.sub(lambda found: f"{found.group(1)}…", text)


@contextmanager
def request_context(*, workspace: str | None, request_id: str):
    """The workspace and request every log line written inside the block belongs to."""
    tokens = (workspace_var.set(workspace), request_var.set(request_id))
    try:
        yield
    finally:
        request_var.reset(tokens[1])
        workspace_var.reset(tokens[0])


class RequestContext(logging.Filter):
    """Puts the current workspace and request id on each record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.workspace = workspace_var.get()
        record.request_id = request_var.get()
        return True


class QuietLibraries(logging.Filter):
    """Slack's libraries log whole request and response bodies (what people typed, customer cards) at DEBUG.
    Their lines below INFO are dropped whatever the level, so LOG_LEVEL=DEBUG shows Rapport's own debugging
    and never message text. (Raising their loggers' levels does not hold: Bolt sets each new logger's level
    from the root's.)"""

    LIBRARIES = ("slack_bolt", "slack_sdk", "urllib3", "sqlalchemy", "aiohttp", "waitress")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or not record.name.startswith(self.LIBRARIES)


class MaskingText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_tokens(super().format(record))


class MaskingJson(JsonFormatter):
    """python-json-logger with exactly our fields: a library's `extra=` never adds one of its own."""

    def __init__(self):
        super().__init__("{levelname}{name}{message}{workspace}{request_id}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})

    def process_log_record(self, log_data: dict) -> dict:
        return {key: log_data[key] for key in JSON_FIELDS if log_data.get(key) is not None}

    def serialize_log_record(self, log_data: dict) -> str:
        return mask_tokens(super().serialize_log_record(log_data))


def configure(*, level: str, log_format: str) -> None:
    """Root logging to stderr in `log_format` ("text" or "json"), replacing whatever was set before."""
    handler = logging.StreamHandler()
    handler.addFilter(QuietLibraries())
    handler.addFilter(RequestContext())
    handler.setFormatter(MaskingJson() if log_format == "json" else MaskingText(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
