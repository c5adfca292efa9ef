"""Customers and their relationship state: create, find by name, touch, decision chain, changes with history."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from rapidfuzz import fuzz
from rapidfuzz import process as fuzzy
from sqlalchemy import func, literal, union_all
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.errors import Ambiguous, BadInput, NotFound, PermissionDenied
from bot.services.names import (
    CHANNEL_ID,
    USER_ID,
    clean_name,
    clean_text,
    name_key,
    refuse_control_characters,
    without_control_characters,
)
from bot.services.reminders import cancel_revisits
from bot.services.vocabulary import parse_choice
from models import Contact, Customer, EcosystemLink, Interaction, RelationshipChange, Workspace
from models.customer import NAME_MAX, SUMMARY_MAX
from models.enums import (
    ContactRole,
    HistoryField,
    OrgRelationship,
    PartnerKind,
    RelationshipLevel,
    Stage,
    Tier,
    TouchKind,
)

REASON_MAX = 500
# Ids arrive from Slack's pickers but also in payloads anyone can forge; we print them inside <@…> and <#…>.
LINK_MAX = 2000
FUTURE_SLACK = timedelta(minutes=5)  # clocks disagree a little; a touch "now" may look a moment ahead


@dataclass(frozen=True)
class Actor:
    """Who is asking, as far as permissions go: Slack's admin/owner flag comes from users.info."""

    user_id: str
    is_admin: bool = False


# -- reading ------------------------------------------------------------------------------------------


def cadence_days(workspace: Workspace, tier: str) -> int:
    return {
        Tier.key: workspace.cadence_key_days,
        Tier.general: workspace.cadence_general_days,
        Tier.longtail: workspace.cadence_longtail_days,
    }[Tier(tier)]


def revisit_due(workspace: Workspace, customer: Customer) -> datetime:
    start = customer.last_touch_at or customer.created_at
    return start + timedelta(days=cadence_days(workspace, customer.tier))


def get_customer(session: Session, *, workspace_id: str, customer_id: int | None) -> Customer:
    """By id (from a button or a form), only in this workspace."""
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    if customer is None or customer.workspace_id != workspace_id:
        raise NotFound("That customer no longer exists.")
    return customer


def find_customer(session: Session, *, workspace_id: str, query: str) -> Customer:
    """By exact name, else by unambiguous prefix (case-, width-insensitive); else the closest names."""
    refuse_control_characters(query, what="customer name")
    key = name_key(query)
    if not key:
        raise BadInput("Which customer? Give its name (in quotes when it has spaces).")
    exact = session.exec(
        select(Customer).where(Customer.workspace_id == workspace_id, Customer.name_key == key)
    ).first()
    if exact is not None:
        return exact
    candidates = session.exec(
        select(Customer)
        .where(Customer.workspace_id == workspace_id, Customer.name_key >= key, Customer.name_key < key + "\U0010ffff")
        .order_by(Customer.name_key)
        .limit(6)
    ).all()
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = [c.name for c in candidates[:5]]
        raise Ambiguous(
            f"“{query}” matches several customers: " + ", ".join(names) + ("…" if len(candidates) > 5 else "") + ".",
            suggestions=names,
            hint="Type more of the name, or put the full name in quotes.",
        )
    suggestions = closest_names(session, workspace_id=workspace_id, query=query)
    raise NotFound(
        f"No customer named “{query}”." + (" Did you mean " + ", ".join(suggestions) + "?" if suggestions else ""),
        suggestions=suggestions,
        hint="`/crm list all` shows every customer; `/crm add <name>` creates one.",
    )


def closest_names(session: Session, *, workspace_id: str, query: str, limit: int = 3) -> list[str]:
    rows = session.exec(
        select(Customer.name_key, Customer.name).where(Customer.workspace_id == workspace_id)
    ).all()
    if not rows:
        return []
    keys = [row[0] for row in rows]
    found = fuzzy.extract(name_key(query), keys, scorer=fuzz.WRatio, limit=limit, score_cutoff=60)
    return [rows[index][1] for _key, _score, index in found]


TRIGRAM = 3  # characters: a text shorter than a trigram cannot use a trigram index


def search_customers(session: Session, *, workspace_id: str, query: str, limit: int = 50) -> list[Customer]:
    """For pickers that search as you type: prefix matches first, then names containing the text."""
    key = name_key(without_control_characters(query))
    base = select(Customer).where(Customer.workspace_id == workspace_id)
    if not key:
        return list(session.exec(base.order_by(Customer.revisit_due_at).limit(limit)).all())
    found = list(
        session.exec(
            base.where(Customer.name_key >= key, Customer.name_key < key + "\U0010ffff")
            .order_by(Customer.name_key)
            .limit(limit)
        ).all()
    )
    if len(found) < limit:
        seen = {c.id for c in found}
        pattern = "%" + key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if len(key) < TRIGRAM:
            # Too short for a trigram index: walk the names in order until enough contain it.
            contains = Customer.name_key.like(pattern, escape="\\")
            more = session.exec(base.where(contains).order_by(Customer.name_key).limit(limit)).all()
        else:
            # Gather every name containing the text, then take the first in name order. On PostgreSQL the
            # gathering (MATERIALIZED) uses the trigram index, which is on lower(name_key), the same text (see
            # migration 0002 for why): left to choose, its planner guesses that 1% of names match and walks the
            # name index in order, which reads the whole workspace when few do (80 ms over 100,000 names
            # instead of 1). SQLite walks its index either way.
            # lower() on both sides: Python's casefold and PostgreSQL's lower() disagree on a few scripts.
            contains = Customer.name_key.like(pattern, escape="\\")
            if session.get_bind().dialect.name == "postgresql":
                contains = func.lower(Customer.name_key).like(func.lower(pattern), escape="\\")
            matching = (select(Customer.id, Customer.name_key)
                        .where(Customer.workspace_id == workspace_id, contains)
                        .cte("matching").prefix_with("MATERIALIZED", dialect="postgresql"))
            first = select(matching.c.id, matching.c.name_key).order_by(matching.c.name_key).limit(limit).subquery()
            more = session.exec(select(Customer).join(first, first.c.id == Customer.id).order_by(first.c.name_key)).all()
        found.extend(c for c in more if c.id not in seen)
    return found[:limit]


def find_contact(session: Session, *, customer: Customer, query: str) -> Contact:
    key = name_key(query)
    contacts = session.exec(select(Contact).where(Contact.customer_id == customer.id)).all()
    exact = [c for c in contacts if c.name_key == key]
    if exact:
        return exact[0]
    prefixed = [c for c in contacts if c.name_key.startswith(key)] if key else []
    if len(prefixed) == 1:
        return prefixed[0]
    names = [c.name for c in (prefixed or contacts)]
    if prefixed:
        raise Ambiguous(f"“{query}” matches several people at {customer.name}: {', '.join(names)}.", suggestions=names)
    raise NotFound(
        f"{customer.name} has no contact named “{query}”."
        + (f" Its decision chain: {', '.join(names)}." if names else " Its decision chain is empty."),
        suggestions=names,
        hint=f'Add one with `/crm contact "{customer.name}" <name> role:decision_maker level:2`.',
    )


# -- permissions --------------------------------------------------------------------------------------


def may_change(workspace: Workspace, customer: Customer | None, actor: Actor) -> bool:
    return (
        actor.is_admin
        or actor.user_id in (workspace.managers or [])
        or (customer is not None and customer.owner_id == actor.user_id)
    )


def ensure_may_change(workspace: Workspace, customer: Customer | None, actor: Actor) -> None:
    if may_change(workspace, customer, actor):
        return
    allowed = ([customer.owner_id] if customer is not None and customer.owner_id else []) + list(workspace.managers)
    if customer is not None:
        message = f"Sorry, only {customer.name}'s owner, the managers and workspace admins can change it. Everyone can read it."
    else:
        message = "Sorry, only the managers and workspace admins can change workspace settings."
    raise PermissionDenied(message, allowed=list(dict.fromkeys(allowed)))


# -- writing ------------------------------------------------------------------------------------------


def _slack_id(value: str | None, *, what: str) -> str | None:
    pattern, field = (USER_ID, "owner") if what == "owner" else (CHANNEL_ID, "channel")
    if value is not None and not pattern.fullmatch(value):
        raise BadInput(f"That {what} is not a Slack {'user' if what == 'owner' else 'channel'}.", field=field)
    return value


def create_customer(
    session: Session,
    *,
    workspace: Workspace,
    name: str,
    by: str,
    now: datetime,
    tier: str = Tier.general,
    stage: str = Stage.prospect,
    org_relationship: str = OrgRelationship.vendor,
    owner_id: str | None = None,
    channel_id: str | None = None,
) -> Customer:
    name = clean_name(name, what="customer name", limit=NAME_MAX)
    owner_id, channel_id = _slack_id(owner_id, what="owner"), _slack_id(channel_id, what="channel")
    key = name_key(name)
    existing = session.exec(
        select(Customer).where(Customer.workspace_id == workspace.id, Customer.name_key == key)
    ).first()
    if existing is not None:
        raise BadInput(f"A customer named “{existing.name}” already exists.", hint=f'See it with `/crm show "{existing.name}"`.',
                       field="name")
    customer = Customer(
        workspace_id=workspace.id,
        name=name,
        name_key=key,
        tier=parse_choice(Tier, tier).value,
        stage=parse_choice(Stage, stage).value,
        org_relationship=parse_choice(OrgRelationship, org_relationship).value,
        owner_id=owner_id or by,
        channel_id=channel_id,
        created_by=by,
        created_at=now,
        updated_at=now,
        revisit_due_at=now,
    )
    customer.revisit_due_at = revisit_due(workspace, customer)
    session.add(customer)
    session.flush()
    return customer


def rename_customer(session: Session, *, workspace: Workspace, customer: Customer, name: str, actor: Actor,
                    now: datetime) -> None:
    ensure_may_change(workspace, customer, actor)
    name = clean_name(name, what="customer name", limit=NAME_MAX)
    key = name_key(name)
    if key != customer.name_key:
        clash = session.exec(
            select(Customer.id).where(Customer.workspace_id == workspace.id, Customer.name_key == key)
        ).first()
        if clash is not None:
            raise BadInput(f"Another customer is already named “{name}”.", field="name")
    customer.name, customer.name_key, customer.updated_at = name, key, now
    session.add(customer)


def set_channel(session: Session, *, workspace: Workspace, customer: Customer, channel_id: str | None,
                actor: Actor, now: datetime) -> None:
    ensure_may_change(workspace, customer, actor)
    customer.channel_id, customer.updated_at = _slack_id(channel_id, what="channel"), now
    session.add(customer)


def log_touch(
    session: Session,
    *,
    workspace: Workspace,
    customer: Customer,
    kind: str,
    summary: str,
    by: str,
    now: datetime,
    at: datetime | None = None,
    contact: Contact | None = None,
    link: str | None = None,
) -> Interaction:
    """Record a touchpoint; the customer's last touch and next revisit move forward with it."""
    kind_value = parse_choice(TouchKind, kind).value
    summary = clean_text(summary, what="summary", limit=SUMMARY_MAX)
    at = at or now
    if at > now + FUTURE_SLACK:
        raise BadInput("A touch cannot be in the future.")
    if link is not None:
        link = clean_text(link, what="link", limit=LINK_MAX, single_line=True)
    interaction = Interaction(
        workspace_id=workspace.id,
        customer_id=customer.id,
        kind=kind_value,
        summary=summary,
        by_user=by,
        at=at,
        contact_id=contact.id if contact else None,
        link=link,
        created_at=now,
    )
    session.add(interaction)
    if customer.last_touch_at is None or at > customer.last_touch_at:
        customer.last_touch_at = at
        customer.revisit_due_at = revisit_due(workspace, customer)
        cancel_revisits(session, customer_id=customer.id, now=now)
    customer.updated_at = now
    session.add(customer)
    session.flush()
    return interaction


def record_change(session, *, customer, field, from_value, to_value, actor, now, reason, contact=None) -> RelationshipChange:
    """One line of history (动态审视): what changed on the customer, from what to what, by whom and why."""
    change = RelationshipChange(
        workspace_id=customer.workspace_id,
        customer_id=customer.id,
        field=field,
        contact_id=contact.id if contact else None,
        from_value=None if from_value is None else str(from_value),
        to_value=str(to_value),
        by_user=actor.user_id,
        at=now,
        reason=reason,
    )
    session.add(change)
    return change


def _clean_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    return clean_text(reason, what="reason", limit=REASON_MAX)


def change_state(
    session: Session,
    *,
    workspace: Workspace,
    customer: Customer,
    field: HistoryField,
    value: str,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
) -> RelationshipChange | None:
    """Change tier, stage, org relationship or owner; the change is kept in history. None when nothing changed."""
    ensure_may_change(workspace, customer, actor)
    reason = _clean_reason(reason)
    if field == HistoryField.owner:
        new = _slack_id(value, what="owner")
        old = customer.owner_id
    else:
        enum = {HistoryField.tier: Tier, HistoryField.stage: Stage, HistoryField.org: OrgRelationship}[field]
        new = parse_choice(enum, value).value
        old = getattr(customer, _COLUMN[field])
    if new == old:
        return None
    setattr(customer, _COLUMN[field], new)
    if field == HistoryField.tier:
        customer.revisit_due_at = revisit_due(workspace, customer)
    customer.updated_at = now
    session.add(customer)
    change = record_change(session, customer=customer, field=field, from_value=old, to_value=new, actor=actor, now=now,
                     reason=reason)
    session.flush()
    return change


_COLUMN = {
    HistoryField.tier: "tier",
    HistoryField.stage: "stage",
    HistoryField.org: "org_relationship",
    HistoryField.owner: "owner_id",
}


def set_contact(
    session: Session,
    *,
    workspace: Workspace,
    customer: Customer,
    name: str,
    actor: Actor,
    now: datetime,
    role: str | None = None,
    level: str | int | None = None,
    slack_user_id: str | None = None,
    reason: str | None = None,
) -> tuple[Contact, bool]:
    """Add a person to the decision chain or update one; a level change goes into history. (contact, created)."""
    ensure_may_change(workspace, customer, actor)
    name = clean_name(name, what="contact name", limit=NAME_MAX)
    role_value = parse_choice(ContactRole, role).value if role else None
    level_value = int(parse_choice(RelationshipLevel, str(level))) if level is not None else None
    reason = _clean_reason(reason)
    key = name_key(name)
    contact = session.exec(
        select(Contact).where(Contact.customer_id == customer.id, Contact.name_key == key)
    ).first()
    created = contact is None
    if created:
        contact = Contact(
            workspace_id=workspace.id,
            customer_id=customer.id,
            name=name,
            name_key=key,
            role=role_value or ContactRole.influencer.value,
            level=level_value or RelationshipLevel.contact.value,
            slack_user_id=slack_user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(contact)
        session.flush()
        record_change(session, customer=customer, field=HistoryField.level, from_value=None, to_value=contact.level,
                actor=actor, now=now, reason=reason, contact=contact)
    else:
        if role_value:
            contact.role = role_value
        if slack_user_id:
            contact.slack_user_id = slack_user_id
        if level_value is not None and level_value != contact.level:
            record_change(session, customer=customer, field=HistoryField.level, from_value=contact.level,
                    to_value=level_value, actor=actor, now=now, reason=reason, contact=contact)
            contact.level = level_value
        contact.updated_at = now
        session.add(contact)
    customer.updated_at = now
    session.add(customer)
    session.flush()
    return contact, created


def change_level(
    session: Session,
    *,
    workspace: Workspace,
    customer: Customer,
    contact_query: str,
    level: str,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
) -> tuple[Contact, int]:
    """Move one person's key relationship level; returns the contact and the level it had."""
    contact = find_contact(session, customer=customer, query=contact_query)
    before = contact.level
    set_contact(session, workspace=workspace, customer=customer, name=contact.name, actor=actor, now=now,
                level=level, reason=reason)
    return contact, before


def history(session: Session, *, customer: Customer, limit: int | None = None) -> list[RelationshipChange]:
    query = (
        select(RelationshipChange)
        .where(RelationshipChange.customer_id == customer.id)
        .order_by(RelationshipChange.at.desc(), RelationshipChange.id.desc())
    )
    if limit:
        query = query.limit(limit)
    return list(session.exec(query).all())


def contact_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.exec(select(Contact.id, Contact.name).where(Contact.id.in_(ids))).all())




# -- ecosystem (客户生态圈) -----------------------------------------------------------------------------------


@dataclass
class Partner:
    """A company in a customer's ecosystem, seen from that customer: its partner, or one it is a partner of."""

    customer: Customer
    kind: str
    around: bool  # True: `customer` is in the card customer's ecosystem; False: the card customer is in its


def link_partner(session: Session, *, workspace: Workspace, customer: Customer, partner: Customer, kind: str,
                 actor: Actor, now: datetime) -> tuple[EcosystemLink, bool]:
    """`partner` joins `customer`'s ecosystem as a supplier, channel partner, integrator or partner (or changes
    kind). (link, created)."""
    ensure_may_change(workspace, customer, actor)
    if partner.id == customer.id:
        raise BadInput(f"{customer.name} cannot be a partner of itself.")
    kind = parse_choice(PartnerKind, kind).value
    link = _link(session, customer, partner)
    created = link is None
    if created:
        try:
            with session.begin_nested():  # two people linking the same pair at once: one row, the later kind
                link = EcosystemLink(workspace_id=workspace.id, customer_id=customer.id, partner_id=partner.id,
                                     kind=kind, created_at=now)
                session.add(link)
        except IntegrityError:
            link, created = _link(session, customer, partner), False
    link.kind = kind
    session.add(link)
    session.flush()
    return link, created


def unlink_partner(session: Session, *, workspace: Workspace, customer: Customer, partner: Customer,
                   actor: Actor) -> bool:
    """Take `partner` out of `customer`'s ecosystem; False when it was not in it."""
    ensure_may_change(workspace, customer, actor)
    link = _link(session, customer, partner)
    if link is None:
        return False
    session.delete(link)
    session.flush()
    return True


def _link(session: Session, customer: Customer, partner: Customer) -> EcosystemLink | None:
    return session.exec(select(EcosystemLink).where(EcosystemLink.customer_id == customer.id,
                                                    EcosystemLink.partner_id == partner.id)).first()


def ecosystem(session: Session, *, customer: Customer, limit: int = 21) -> list[Partner]:
    """The customer's partners, then the customers it is a partner of, by name (one query; the card shows 20
    and asks for one more to know whether there are more)."""
    # The links from each side first (each by its own index), then their companies by id: joined the other way
    # round, SQLite walked every customer of the workspace to find a handful of links (30 ms at 100,000).
    links = union_all(
        select(EcosystemLink.kind, EcosystemLink.partner_id.label("other"), literal(True).label("around"))
        .where(EcosystemLink.customer_id == customer.id),
        select(EcosystemLink.kind, EcosystemLink.customer_id.label("other"), literal(False).label("around"))
        .where(EcosystemLink.partner_id == customer.id),
    ).subquery()
    rows = session.exec(
        select(links.c.kind, links.c.around, Customer)
        .join(Customer, Customer.id == links.c.other)
        .where(Customer.workspace_id == customer.workspace_id)
        .order_by(links.c.around.desc(), Customer.name_key)
        .limit(limit)
    ).all()
    return [Partner(customer=other, kind=kind, around=bool(around)) for kind, around, other in rows]
