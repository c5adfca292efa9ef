"""The decision chain as a map (客户决策链): who reports to whom, where each stands, who favours a competitor,
who left and who took over. Loops in reports-to are refused; the card draws the map as a tree."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from bot.errors import BadInput
from bot.services.customers import Actor, ensure_may_change, find_contact, find_customer, record_change
from bot.services.names import clean_name, name_key
from models import Contact, Customer, EcosystemLink, Workspace
from models.customer import NAME_MAX
from models.enums import ContactRole, ContactStatus, HistoryField, PartnerKind, RelationshipLevel, Stance

NONE_WORDS = {"none", "nobody", "-"}
HISTORY_NAME = 64  # RelationshipChange.to_value holds 64 characters


@dataclass
class MapChange:
    successor: Contact | None = None  # created by replaced_by
    left: bool = False  # the person is newly marked left or moved (the champion watch reacts)


def set_map(session: Session, *, workspace: Workspace, customer: Customer, contact: Contact, actor: Actor,
            now: datetime, reports: str | None = None, stance: str | None = None, leans: str | None = None,
            status: str | None = None, replaced_by: str | None = None) -> MapChange:
    """Change a person's place on the map; each change goes into history. Nothing is written on a refusal."""
    ensure_may_change(workspace, customer, actor)
    change = MapChange()
    if replaced_by is not None and status is None and contact.status == ContactStatus.active:
        status = ContactStatus.left.value  # a successor means the person is gone
    if reports is not None:
        boss = None if reports.strip().lower() in NONE_WORDS else find_contact(session, customer=customer, query=reports)
        if boss is not None:
            refuse_loop(session, contact=contact, boss=boss)
        if (boss.id if boss else None) != contact.reports_to_id:
            before = session.get(Contact, contact.reports_to_id) if contact.reports_to_id else None
            _history(session, customer, contact, HistoryField.reports, before.name if before else None,
                     boss.name if boss else "nobody", actor, now)
            contact.reports_to_id = boss.id if boss else None
    if stance is not None:
        value = _choice(Stance, stance, "stance")
        if value != contact.stance:
            _history(session, customer, contact, HistoryField.stance, contact.stance, value, actor, now)
            contact.stance = value
    if leans is not None:
        rival = None if leans.strip().lower() in NONE_WORDS else competitor_of(session, customer=customer, query=leans)
        if (rival.id if rival else None) != contact.leans_to_id:
            _history(session, customer, contact, HistoryField.leans, None, rival.name if rival else "nobody",
                     actor, now)
            contact.leans_to_id = rival.id if rival else None
    if status is not None:
        value = _choice(ContactStatus, status, "status")
        if value != contact.status:
            _history(session, customer, contact, HistoryField.status, contact.status, value, actor, now,
                     reason=f"was at level {contact.level}/5" if value != ContactStatus.active else None)
            change.left = value != ContactStatus.active
            contact.status = value
    if replaced_by is not None:
        change.successor = _successor(session, workspace=workspace, customer=customer, contact=contact,
                                      name=replaced_by, actor=actor, now=now)
    contact.updated_at = customer.updated_at = now
    session.add(contact)
    session.add(customer)
    session.flush()
    return change


def refuse_loop(session: Session, *, contact: Contact, boss: Contact) -> None:
    """`contact` reporting to `boss` must not close a loop (nor be the person themselves)."""
    if boss.id == contact.id:
        raise BadInput(f"{contact.name} cannot report to themselves.",
                       hint='Name their manager: `reports:"Zhang San"`, or `reports:none`.')
    chain = {c.id: c for c in session.exec(select(Contact).where(Contact.customer_id == contact.customer_id))}
    path, current = [boss.name], boss
    while current.reports_to_id is not None and current.reports_to_id in chain:
        current = chain[current.reports_to_id]
        if current.id == contact.id:
            loop = " → ".join([contact.name, *path, contact.name])
            raise BadInput(f"That would make a loop: {loop}. Someone in a decision chain reports upwards.",
                           hint=f"Change whom {path[-1]} reports to first, or give {contact.name} another manager.")
        path.append(current.name)
        if len(path) > len(chain):  # a loop already stored (imported data): stop walking it
            break


def competitor_of(session: Session, *, customer: Customer, query: str) -> Customer:
    """A company linked to the customer as a competitor (`/crm link <customer> competitor <name>`)."""
    rival = find_customer(session, workspace_id=customer.workspace_id, query=query)
    linked = session.exec(select(EcosystemLink.id).where(
        EcosystemLink.customer_id == customer.id, EcosystemLink.partner_id == rival.id,
        EcosystemLink.kind == PartnerKind.competitor)).first()
    if linked is None:
        raise BadInput(f"{rival.name} is not a competitor at {customer.name} yet.",
                       hint=f'Put it in the ecosystem first: `/crm link "{customer.name}" competitor "{rival.name}"`.')
    return rival


def _successor(session, *, workspace, customer, contact, name, actor, now) -> Contact:
    """Who took over: found in the chain, or added at level 1 in the same role and place."""
    name = clean_name(name, what="successor's name", limit=NAME_MAX)
    successor = session.exec(select(Contact).where(Contact.customer_id == customer.id,
                                                   Contact.name_key == name_key(name))).first()
    if successor is not None and successor.id == contact.id:
        raise BadInput(f"{contact.name} cannot replace themselves.")
    if successor is None:
        successor = Contact(workspace_id=workspace.id, customer_id=customer.id, name=name, name_key=name_key(name),
                            role=contact.role or ContactRole.influencer.value, level=RelationshipLevel.contact.value,
                            reports_to_id=contact.reports_to_id, created_at=now, updated_at=now)
        session.add(successor)
        session.flush()
        record_change(session, customer=customer, field=HistoryField.level, from_value=None,
                      to_value=successor.level, actor=actor, now=now, contact=successor,
                      reason=f"took over from {contact.name}"[:500])
    if contact.replaced_by_id != successor.id:
        contact.replaced_by_id = successor.id
        # Whoever reported to the one who left now reports to the successor.
        for report in session.exec(select(Contact).where(Contact.reports_to_id == contact.id)):
            if report.id != successor.id:
                report.reports_to_id = successor.id
                session.add(report)
    return successor


def _choice(enum, word: str, what: str) -> str:
    value = word.strip().lower()
    if value not in {member.value for member in enum}:
        raise BadInput(f"“{word}” is not a {what}; it is one of {', '.join(m.value for m in enum)}.")
    return value


def _history(session, customer, contact, field, before, after, actor, now, reason=None) -> None:
    record_change(session, customer=customer, field=field, contact=contact, actor=actor, now=now, reason=reason,
                  from_value=None if before is None else str(before)[:HISTORY_NAME],
                  to_value=str(after)[:HISTORY_NAME])


# -- the tree ---------------------------------------------------------------------------------------------


ROLE_ORDER = {role.value: index for index, role in enumerate(ContactRole)}


def tree(contacts: list[Contact]) -> list[tuple[int, Contact]]:
    """(depth, person) in drawing order: each person under whom they report, people who left last among their
    peers; someone whose manager is not in the chain starts a tree of their own."""
    by_id = {c.id: c for c in contacts}
    children: dict[int | None, list[Contact]] = {}
    for person in contacts:
        parent = person.reports_to_id if person.reports_to_id in by_id and person.reports_to_id != person.id else None
        children.setdefault(parent, []).append(person)
    order = lambda c: (c.status != ContactStatus.active, ROLE_ORDER.get(c.role, 99), -c.level, c.name_key)  # noqa: E731
    drawn: list[tuple[int, Contact]] = []
    seen: set[int] = set()

    def walk(parent: int | None, depth: int) -> None:
        for person in sorted(children.get(parent, []), key=order):
            if person.id in seen:
                continue
            seen.add(person.id)
            drawn.append((depth, person))
            walk(person.id, depth + 1)

    walk(None, 0)
    for person in sorted((c for c in contacts if c.id not in seen), key=order):  # a loop stored before the rule
        seen.add(person.id)
        drawn.append((0, person))
        walk(person.id, 1)
    return drawn
