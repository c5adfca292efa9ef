"""The boundary between our team and everyone else: only members of our own workspace who are not guests own
accounts, manage, get the digest. carol (another organisation, through Slack Connect) and gus (a guest in our
workspace) are refused with a reason that names them, and nothing is written."""

import io

import pytest
from sqlmodel import select

from bot.services.transfer import import_customers
from bot.slack.simulate import Person
from models import Customer, RelationshipChange, Workspace
from tests.support import check_message
from tests.test_bad_input import snapshot
from tests.test_customer_forms import customer_form, inline_error, submit

GUEST = Person(id="U0GUEST", name="gus", team_id="T0RAPPORT")
OUTSIDERS = {  # who, as a mention in a command, and the reason Rapport must give
    "carol": ("<@U0CAROL|carol>", "U0CAROL", "from another organisation (Slack Connect)"),
    "gus": ("<@U0GUEST|gus>", "U0GUEST", "a guest in our workspace"),
}


@pytest.fixture
def world(slack, fake_slack):
    fake_slack.add_user("U0GUEST", name="gus", team_id="T0RAPPORT", is_restricted=True)
    slack.command("mei", 'add "Acme Corp" tier:key owner:<@U0ALICE|alice> channel:<#C0ACME|acme-shared>')
    slack.command("mei", "config managers add <@U0MEI|mei>")
    return slack


def refusal(answer: dict, user_id: str, reason: str) -> str:
    """An ephemeral answer that names the person and says why; returned for more checks."""
    check_message(answer)
    assert answer["response_type"] == "ephemeral", answer
    text = answer["text"]
    assert f"<@{user_id}> is {reason}" in text and "Nothing was changed" in text, text
    return text


def workspace_row(slack) -> Workspace:
    with slack.session() as session:
        return session.get(Workspace, "T0RAPPORT")


@pytest.mark.parametrize("who", sorted(OUTSIDERS))
def test_someone_outside_our_team_cannot_be_made_an_owner(world, who):
    mention, user_id, reason = OUTSIDERS[who]
    before = snapshot(world)
    handed = refusal(world.command("alice", f'owner acme {mention} they asked'), user_id, reason)
    assert "cannot own an account" in handed
    added = refusal(world.command("alice", f'add "Initech" tier:key owner:{mention}'), user_id, reason)
    assert "cannot own an account" in added
    assert snapshot(world) == before
    with world.session() as session:
        assert [c.name for c in session.exec(select(Customer))] == ["Acme Corp"]
        assert session.exec(select(Customer)).one().owner_id == "U0ALICE"
        assert session.exec(select(RelationshipChange).where(RelationshipChange.field == "owner")).all() == []


@pytest.mark.parametrize("who", sorted(OUTSIDERS))
def test_the_customer_form_refuses_an_outside_owner_under_the_owner_field(world, who):
    _mention, user_id, reason = OUTSIDERS[who]
    name = {"carol": "carol", "gus": "gus"}[who]
    new = {"type": "modal", "callback_id": "customer_form", "private_metadata": "{}",
           "blocks": [{"type": "input", "block_id": "name"}]}
    said = inline_error(submit(world, "alice", new, customer_form("Initech", owner=user_id)), "owner")
    assert said.startswith(f"{name} is {reason}, so they cannot own an account"), said
    with world.session() as session:
        acme_id = session.exec(select(Customer.id)).one()
    edit = {**new, "private_metadata": f'{{"customer_id":{acme_id}}}'}
    said = inline_error(submit(world, "alice", edit, customer_form("Acme Corp", tier="general", owner=user_id)),
                        "owner")
    assert "cannot own an account" in said
    with world.session() as session:
        acme = session.exec(select(Customer)).one()
        assert (acme.owner_id, acme.tier) == ("U0ALICE", "key")  # the whole form was refused, tier too
        assert [c.name for c in session.exec(select(Customer))] == ["Acme Corp"]
    # The same edit keeping alice as owner goes through.
    assert submit(world, "alice", edit, customer_form("Acme Corp", tier="general")) == {}


@pytest.mark.parametrize("who", sorted(OUTSIDERS))
def test_someone_outside_our_team_cannot_be_made_a_manager(world, who):
    mention, user_id, reason = OUTSIDERS[who]
    text = refusal(world.command("mei", f"config managers add <@U0BOB|bob> {mention}"), user_id, reason)
    assert "cannot be a manager" in text
    assert workspace_row(world).managers == ["U0MEI"]  # bob was not added either: all or nothing
    # Taking someone off the list never needs them to be one of us.
    assert "Managers: none" in str(world.command("mei", f"config managers remove {mention} <@U0MEI|mei>"))


def test_someone_outside_our_team_cannot_subscribe_to_the_digest(world, fake_slack):
    for person, channel in ((world.person("carol"), "C0ACME"), (GUEST, "C0SALES")):
        answer = world.sim.command(person, channel, "digest subscribe").json()
        check_message(answer)
        reason = OUTSIDERS["carol" if person.id == "U0CAROL" else "gus"][2]
        assert answer["response_type"] == "ephemeral"
        assert f"you are {reason}" in answer["text"] and "for members of our own team" in answer["text"]
    assert workspace_row(world).digest_subscribers == []
    world.command("mei", "digest subscribe")
    assert workspace_row(world).digest_subscribers == ["U0MEI"]


def test_bots_and_deactivated_accounts_are_refused_too(world, fake_slack):
    fake_slack.add_user("U0ROBOT", name="robot", team_id="T0RAPPORT", is_bot=True)
    fake_slack.add_user("U0GONE", name="gone", team_id="T0RAPPORT", deleted=True)
    refusal(world.command("alice", "owner acme <@U0ROBOT|robot>"), "U0ROBOT", "a bot")
    refusal(world.command("mei", "config managers add <@U0GONE|gone>"), "U0GONE",
            "no longer in our workspace (deactivated)")
    # And a member of our team is welcome in both.
    assert "now belongs to <@U0BOB>" in str(world.command("alice", "owner acme <@U0BOB|bob>"))
    assert "Managers: <@U0MEI>, <@U0BOB>" in str(world.command("mei", "config managers add <@U0BOB|bob>"))


def test_an_import_refuses_an_owner_id_the_people_cache_knows_as_outside(world):
    world.command("alice", "owner acme <@U0CAROL|carol>")  # refused, but carol is now in the people cache
    rows = "name,tier,stage,org,owner,channel,contacts\nInitech,key,active,vendor,U0CAROL,,\nHooli,key,active,vendor,U0BOB,,\n"
    with world.session() as session:
        workspace = session.get(Workspace, "T0RAPPORT")
        report = import_customers(session, workspace=workspace, rows=io.StringIO(rows), by="U0MEI",
                                  now=world.runtime.clock.now(), skip_bad=True)
        session.commit()
    assert report.bad == [(2, "owner “U0CAROL” is from another organisation (U0CAROL); owners are members of our "
                              "own team.")]
    with world.session() as session:
        assert sorted(c.name for c in session.exec(select(Customer))) == ["Acme Corp", "Hooli"]
