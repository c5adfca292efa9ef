"""The relationship plan's coordination: each change in one unit of work, then the plan view rendered again."""

from dataclasses import dataclass

from bot.db import read_scope, session_scope
from bot.errors import BadInput
from bot.runtime import Runtime
from bot.services import plan as svc
from bot.services.customers import Actor, find_customer, get_customer
from bot.services.vocabulary import human
from bot.services.when import parse_when
from bot.services.workspaces import get_workspace
from bot.services.worktime import WorkingHours
from bot.slack import people
from bot.slack.render import render
from bot.slack.state import row_id
from models import Customer
from models.enums import OrgRelationship

EDIT_ACTION = "plan.edit"  # the Plan button on the card and the Edit button on the plan
FORM = "plan_form"


@dataclass
class Shown:
    """What the plan view answers with: the notification text and its blocks."""

    text: str
    blocks: list


def show(runtime: Runtime, *, workspace_id: str, query: str, change: dict | None = None) -> Shown:
    with read_scope(runtime.engine) as session:
        customer = find_customer(session, workspace_id=workspace_id, query=query)
        return _shown(session, customer, change)


def _shown(session, customer: Customer, change: dict | None) -> Shown:
    plan = svc.plan_of(session, customer=customer)
    blocks = render("plan.j2", plan=plan, change=change, edit_action=EDIT_ACTION)
    return Shown(text=f"Relationship plan of {customer.name}", blocks=blocks)


def set_target(runtime: Runtime, *, workspace_id: str, actor: Actor, query: str, by: str,
               org: str | None = None, contact: str | None = None, level: str | None = None) -> Shown:
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        workspace = get_workspace(session, workspace_id)
        customer = find_customer(session, workspace_id=workspace_id, query=query)
        if org is not None:
            target = svc.set_org_target(session, workspace=workspace, customer=customer, value=org, by=by,
                                        actor=actor, now=now)
        else:
            target = svc.set_contact_target(session, workspace=workspace, customer=customer, contact_query=contact,
                                            level=level, by=by, actor=actor, now=now)
        return _shown(session, customer, {"kind": "target", "aim": target.aim})


def set_pressure(runtime: Runtime, *, workspace_id: str, actor: Actor, query: str, kind: str, text: str) -> Shown:
    now = runtime.clock.now()
    with session_scope(runtime.engine) as session:
        workspace = get_workspace(session, workspace_id)
        customer = find_customer(session, workspace_id=workspace_id, query=query)
        pressure = svc.set_pressure(session, workspace=workspace, customer=customer, kind=kind, text=text,
                                    actor=actor, now=now)
        return _shown(session, customer, {"kind": "pressure", "pressure": pressure.kind})


def owner_hours(runtime: Runtime, client, *, workspace_id: str, owner_id: str):
    """The step owner's time zone from Slack (cached), asked before the transaction: SQLite has one writer."""
    person = people.lookup(runtime, client, workspace_id=workspace_id, user_id=owner_id)
    return person.tz if person else None


def add_step(runtime: Runtime, client, *, workspace_id: str, actor: Actor, query: str, text: str, due: str,
             owner_id: str | None) -> Shown:
    """A step due on a day, for `owner_id` (who has passed the our-team check) or else the account's owner."""
    now = runtime.clock.now()
    with read_scope(runtime.engine) as session:
        customer = find_customer(session, workspace_id=workspace_id, query=query)
        owner = owner_id or customer.owner_id or actor.user_id
    tz = owner_hours(runtime, client, workspace_id=workspace_id, owner_id=owner)
    with session_scope(runtime.engine) as session:
        workspace = get_workspace(session, workspace_id)
        customer = session.get(Customer, customer.id)
        hours = WorkingHours.of(workspace, tz)
        due_at = parse_when(due, now=now, hours=hours)
        step = svc.add_step(session, workspace=workspace, customer=customer, text=text, due_at=due_at,
                            owner_id=owner, hours=hours, actor=actor, now=now)
        return _shown(session, customer, {"kind": "step", "step_id": step.id, "deliver_at": step.deliver_at,
                                          "owner": owner})


# -- the form -----------------------------------------------------------------------------------------------


def open_form(runtime: Runtime, client, *, trigger_id: str, workspace_id: str, customer_id) -> None:
    with read_scope(runtime.engine) as session:
        customer = _customer(session, workspace_id, customer_id)
        plan = svc.plan_of(session, customer=customer)
        view = render("plan_form.j2", plan=plan, callback_id=FORM,
                      orgs=[(org.value, human(org.value)) for org in OrgRelationship])
    client.views_open(trigger_id=trigger_id, view=view)


def save_form(runtime: Runtime, client, *, workspace_id: str, actor: Actor, customer_id, values: dict) -> None:
    """The form's changes, all or none: pressures whose text changed, the org target, a new step."""
    now = runtime.clock.now()
    with read_scope(runtime.engine) as session:
        owner = _customer(session, workspace_id, customer_id).owner_id or actor.user_id
    tz = owner_hours(runtime, client, workspace_id=workspace_id, owner_id=owner) if values.get("step") else None
    with session_scope(runtime.engine) as session:
        workspace = get_workspace(session, workspace_id)
        customer = _customer(session, workspace_id, customer_id)
        plan = svc.plan_of(session, customer=customer)
        for kind in plan.pressure_kinds:
            text = (values.get(f"pressure_{kind}") or "").strip()
            if text and (kind not in plan.pressures or plan.pressures[kind].text != text):
                _in_field(f"pressure_{kind}", svc.set_pressure, session, workspace=workspace, customer=customer,
                          kind=kind, text=text, actor=actor, now=now)
        org, by = values.get("org_target"), (values.get("org_by") or "").strip()
        if org or by:
            if not (org and by):
                raise BadInput("An org target needs both the level and the date.", field="org_by" if org else "org_target")
            _in_field("org_by", svc.set_org_target, session, workspace=workspace, customer=customer, value=org,
                      by=by, actor=actor, now=now)
        step, due = (values.get("step") or "").strip(), (values.get("step_due") or "").strip()
        if step or due:
            if not (step and due):
                raise BadInput("A step needs both what to do and when.", field="step_due" if step else "step")
            hours = WorkingHours.of(workspace, tz)
            due_at = _in_field("step_due", parse_when, due, now=now, hours=hours)
            _in_field("step", svc.add_step, session, workspace=workspace, customer=customer, text=step,
                      due_at=due_at, owner_id=owner, hours=hours, actor=actor, now=now)


def _in_field(field: str, function, *args, **kwargs):
    """Run a service; its BadInput is shown under the form's field."""
    try:
        return function(*args, **kwargs)
    except BadInput as exc:
        exc.field = exc.field or field
        raise


def _customer(session, workspace_id: str, customer_id) -> Customer:
    return get_customer(session, workspace_id=workspace_id, customer_id=row_id(customer_id))
