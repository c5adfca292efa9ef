"""Settings from the environment (or a .env file), in one pydantic-settings class."""

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SLACK_API_DEFAULT = "https://slack.com/api/"
ENV_PREFIX_NOTE = "set it in the environment or in .env"


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line naming it and how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_api_url: str = SLACK_API_DEFAULT
    data_dir: Path = Path("data")
    database_url: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # text for people; json: one object a line (time, level, logger, message, workspace, request_id)
    log_format: Literal["text", "json"] = "text"
    # Reminder DMs per second from one process (0: no limit); Slack allows short bursts above ~1/s per
    # channel and a few hundred per minute per workspace.
    delivery_rate: float = Field(default=10.0, ge=0)
    delivery_threads: int = Field(default=4, ge=1, le=32)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value):
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value):
        return value.lower() if isinstance(value, str) else value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value):
        if value and not value.startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value or None

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value):
        if value and not value.startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp- (Socket Mode)")
        return value or None

    @field_validator("slack_signing_secret", "slack_client_id", "slack_client_secret")
    @classmethod
    def _empty_is_unset(cls, value):
        return value or None

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str):
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value):
        if not value:
            return None
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError("is not a database URL such as postgresql+psycopg://user@host/db") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("psycopg2", "default"):
            value = str(url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
        return value

    @model_validator(mode="after")
    def _pairs(self):
        if bool(self.slack_client_id) != bool(self.slack_client_secret):
            raise ValueError("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together for OAuth installs")
        return self

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'rapport.db'}"

    @property
    def oauth(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def has_slack_credentials(self) -> bool:
        return bool(self.slack_bot_token or self.oauth or self.slack_app_token)

    def require_for_serving(self, *, socket_mode: bool) -> None:
        """Raise ConfigError naming every setting `rapport serve` still needs."""
        missing = []
        if socket_mode:
            if not self.slack_app_token:
                missing.append("SLACK_APP_TOKEN (xapp-…, App-Level Token with connections:write)")
            if not self.slack_bot_token:
                missing.append("SLACK_BOT_TOKEN (xoxb-…, from OAuth & Permissions)")
        else:
            if not self.slack_signing_secret:
                missing.append("SLACK_SIGNING_SECRET (Basic Information → App Credentials)")
            if not (self.slack_bot_token or self.oauth):
                missing.append("SLACK_BOT_TOKEN (xoxb-…) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for OAuth")
        if missing:
            raise ConfigError("missing settings: " + "; ".join(missing) + f" — {ENV_PREFIX_NOTE}")

    def apply_logging(self) -> None:
        from bot.logs import configure

        configure(level=self.log_level, log_format=self.log_format)
        if self.log_level != "DEBUG":  # migrations and the scheduler are chatty at INFO
            for noisy in ("alembic", "apscheduler"):
                logging.getLogger(noisy).setLevel(logging.WARNING)


def load_settings(**overrides) -> Settings:
    """Settings from the environment; a bad value becomes one ConfigError line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper() or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"setting {name} {message} — {ENV_PREFIX_NOTE}") from None
