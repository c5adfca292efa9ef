"""Coverage (普遍客户关系): who on our side touched whom at the customer in the last 90 days, from the touches
already logged; whether the account hangs on one person (single-threaded), and the named risks of its chain."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from models import Interaction

WINDOW = timedelta(days=90)
SINGLE_SHARE = 0.8  # one contact with this share of the touches that name someone: single-threaded
MIN_TOUCHES = 3  # fewer touches than this say nothing about threads yet
DECISION_LEVEL = 3
RENEWAL_LEVEL = 4


@dataclass
class Coverage:
    """Touches of the window per (our person, their contact id or None), and what they say."""

    cells: dict[tuple[str, int | None], int]
    total: int
    single_threaded: str | None = None  # the reason in words, when it is
    risks: list[str] = field(default_factory=list)

    @property
    def ours(self) -> list[str]:
        """Our people, most touches first."""
        by_person: dict[str, int] = defaultdict(int)
        for (person, _contact), n in self.cells.items():
            by_person[person] += n
        return sorted(by_person, key=lambda person: (-by_person[person], person))

    def row(self, person: str) -> list[tuple[int | None, int]]:
        """One of our people's touches per contact, most first."""
        found = [(contact, n) for (who, contact), n in self.cells.items() if who == person]
        return sorted(found, key=lambda item: (-item[1], item[0] is None, item[0] or 0))


def compute(touches: list[tuple[str, int | None, int]], contacts: list[tuple[int, str, str, int]], *,
            renewal: bool = False) -> Coverage:
    """`touches`: (by_user, contact_id, count) of the window; `contacts`: the active chain as (id, name, role,
    level). A pure function: the card, health and the digest all judge the same way."""
    cells = {(by, contact): n for by, contact, n in touches if n}
    total = sum(cells.values())
    result = Coverage(cells=cells, total=total)
    names = {contact_id: name for contact_id, name, _role, _level in contacts}
    if total >= MIN_TOUCHES:
        per_contact: dict[int, int] = defaultdict(int)
        for (_by, contact), n in cells.items():
            if contact is not None:
                per_contact[contact] += n
        named = sum(per_contact.values())
        top = max(per_contact, key=lambda c: (per_contact[c], -c), default=None)
        if top is not None and per_contact[top] >= SINGLE_SHARE * named:
            who = names.get(top, "one person")
            result.single_threaded = f"single-threaded: {per_contact[top]} of {named} touches with {who}"
        elif len(result.ours) == 1:
            result.single_threaded = f"single-threaded: all {total} touches by one of our people"
    if contacts:
        if not any(role == "decision_maker" and level >= DECISION_LEVEL for _id, _name, role, level in contacts):
            result.risks.append(f"no decision maker at level {DECISION_LEVEL} or above")
        if renewal and not any(level >= RENEWAL_LEVEL for _id, _name, _role, level in contacts):
            result.risks.append(f"no one at level {RENEWAL_LEVEL}+ on a renewal")
    return result


def touches_of(session: Session, *, customer_id: int, now: datetime) -> list[tuple[str, int | None, int]]:
    """One customer's window of touches, counted per (our person, contact): one grouped query."""
    return list(session.exec(
        select(Interaction.by_user, Interaction.contact_id, func.count())
        .where(Interaction.customer_id == customer_id, Interaction.at >= now - WINDOW)
        .group_by(Interaction.by_user, Interaction.contact_id)
    ).all())


def touches_by_customer(session: Session, *, workspace_id: str, scoped_ids, now: datetime
                        ) -> dict[int, list[tuple[str, int | None, int]]]:
    """The same for many customers (a subquery of ids) in one grouped query."""
    found: dict[int, list] = defaultdict(list)
    for customer_id, by_user, contact_id, n in session.exec(
        select(Interaction.customer_id, Interaction.by_user, Interaction.contact_id, func.count())
        .where(Interaction.workspace_id == workspace_id, Interaction.customer_id.in_(scoped_ids),
               Interaction.at >= now - WINDOW)
        .group_by(Interaction.customer_id, Interaction.by_user, Interaction.contact_id)
    ).all():
        found[customer_id].append((by_user, contact_id, n))
    return found
