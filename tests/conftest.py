"""Fixtures: a migrated database on SQLite and on PostgreSQL, the fake Slack, a movable clock, and the real app."""

import os
import shutil
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.clock import ManualClock
from bot.config import Settings
from bot.db import make_engine, upgrade
from bot.runtime import Runtime
from bot.slack import presets
from bot.slack.client import make_client
from bot.slack.fake import FakeSlack
from tests.support import SlackHarness

PG_URL = os.environ.get("RAPPORT_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
SIGNING_SECRET = "test-signing-secret"  # a test value, not a real secret
MONDAY_9_UTC = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "rapport.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _pg_admin():
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_template():
    if not PG_URL:
        if IN_CI:
            pytest.fail("RAPPORT_TEST_POSTGRES_URL is not set: in CI a missing PostgreSQL is a failure")
        pytest.skip("PostgreSQL not available (run ./scripts/test to start one)")
    name = f"tpl_{_worker()}_{uuid.uuid4().hex[:6]}"
    admin = _pg_admin()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A freshly migrated, empty database of each kind: every storage test runs on both."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "rapport.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def clock():
    return ManualClock(MONDAY_9_UTC)


@pytest.fixture
def fake_slack():
    fake = FakeSlack(team_id=presets.HOME_TEAM).start()
    presets.install(fake)
    yield fake
    fake.stop()


@pytest.fixture
def settings(database_url, fake_slack):
    return Settings(
        slack_bot_token="xoxb-test",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake_slack.api_url,
        database_url=database_url,
        _env_file=None,
    )


@pytest.fixture
def runtime(settings, clock):
    engine = make_engine(settings.database)
    client = make_client(base_url=settings.slack_api_url, token=settings.slack_bot_token)
    yield Runtime(settings=settings, engine=engine, clock=clock, client=client)
    engine.dispose()


@pytest.fixture
def slack(runtime, fake_slack):
    """The real Bolt app behind signed requests, and the fake Slack it talks to."""
    harness = SlackHarness(runtime, fake_slack, signing_secret=SIGNING_SECRET)
    yield harness
    harness.close()
