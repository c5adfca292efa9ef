"""The people and channels of the local console (and of the tests): two reps, a manager, a customer."""

from dataclasses import dataclass

HOME_TEAM = "T0RAPPORT"
CUSTOMER_TEAM = "T0CUSTOMER"


@dataclass(frozen=True)
class PresetPerson:
    key: str
    id: str
    name: str
    team_id: str
    tz: str
    is_admin: bool = False
    email: str | None = None


@dataclass(frozen=True)
class PresetChannel:
    id: str
    name: str
    members: tuple[str, ...]
    is_ext_shared: bool = False


PEOPLE = [
    PresetPerson("alice", "U0ALICE", "alice", HOME_TEAM, "America/New_York", email="alice@rapport.example"),
    PresetPerson("bob", "U0BOB", "bob", HOME_TEAM, "Europe/Berlin", email="bob@rapport.example"),
    PresetPerson("mei", "U0MEI", "mei", HOME_TEAM, "Asia/Shanghai", is_admin=True, email="mei@rapport.example"),
    PresetPerson("carol", "U0CAROL", "carol", CUSTOMER_TEAM, "Europe/London", email="carol@acme.example"),
]

CHANNELS = [
    PresetChannel("C0SALES", "sales", ("U0ALICE", "U0BOB", "U0MEI")),
    PresetChannel("C0MANAGERS", "managers", ("U0MEI",)),
    PresetChannel("C0ACME", "acme-shared", ("U0ALICE", "U0CAROL"), is_ext_shared=True),
]


def person(key: str) -> PresetPerson:
    for candidate in PEOPLE:
        if candidate.key == key or candidate.id == key:
            return candidate
    raise KeyError(key)


def install(fake) -> None:
    """Register the presets with a FakeSlack so users.info and conversations.info know them."""
    for p in PEOPLE:
        fake.add_user(p.id, name=p.name, team_id=p.team_id, tz=p.tz, is_admin=p.is_admin, email=p.email)
    for c in CHANNELS:
        fake.add_channel(c.id, name=c.name, members=c.members, is_ext_shared=c.is_ext_shared)


def set_up_as_console(workspace) -> None:
    """The console's workspace settings: mei manages, #managers receives the digest."""
    workspace.managers = [person("mei").id]
    workspace.digest_channel = "C0MANAGERS"


def prepare_workspace(runtime) -> None:
    """The simulated workspace, the first time: mei manages and #managers receives the digest."""
    from bot.db import session_scope
    from bot.services.workspaces import ensure_workspace
    from models import Workspace

    with session_scope(runtime.engine) as session:
        fresh = session.get(Workspace, HOME_TEAM) is None
        workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=runtime.clock.now(), name="Rapport (console)")
        if fresh:
            set_up_as_console(workspace)
            session.add(workspace)
