"""Importing a CRM's contacts and activities onto the customers already imported: contacts join the decision
chain through set_contact; each activity becomes a touch logged through log_touch with its own date, so last
touch and the next revisit move as if it had been logged in Rapport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from sqlalchemy import select
from sqlmodel import Session

from bot.errors import BadInput
from bot.services.customers import Actor, log_touch, set_contact
from bot.services.import_columns import FIELDS
from bot.services.mapping import Mapping, map_header
from bot.services.names import clean_text, name_key
from bot.services.tables import read_records
from bot.services.transfer import REASON, SHOWN_BAD
from bot.services.vocabulary import parse_choice
from models import Contact, Customer, Interaction, Workspace
from models.customer import SUMMARY_MAX
from models.enums import ContactRole, RelationshipLevel, TouchKind

BATCH = 1000
# How CRMs write an activity's time: ISO (HubSpot, Pipedrive, Rapport), and Salesforce's US report format.
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y")


@dataclass
class RowsReport:
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0  # already there as the row says (a touch: the same customer, time, kind and summary)
    bad: list[tuple[int, str]] = field(default_factory=list)
    mapping: Mapping | None = None


class RowsRefused(BadInput):
    """Bad rows and no skip_bad: raised so the transaction rolls back whole."""

    def __init__(self, report: RowsReport):
        count = len(report.bad)
        shown = "\n".join(f"line {line}: {message}" for line, message in report.bad[:SHOWN_BAD])
        super().__init__(f"{count:,} bad row{'s' if count != 1 else ''} in the file; nothing was imported.\n{shown}",
                         hint="Fix those rows and import again, or skip the bad rows to import the others.")
        self.report = report


def parse_when(value: str) -> datetime:
    """An activity's time as UTC: ISO 8601 (with or without an offset; naive means UTC) or m/d/Y."""
    text = value.strip().replace("T", " ").removesuffix("Z").removesuffix(" UTC")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
        for pattern in _FORMATS:
            try:
                moment = datetime.strptime(text, pattern)  # noqa: DTZ007 (naive: taken as UTC below)
                break
            except ValueError:
                continue
        if moment is None:
            raise BadInput(f"“{value}” is not a date (write it as 2025-03-31 or 2025-03-31 14:30).") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rows(source: IO[bytes] | IO[str], report: RowsReport, overrides, *,
          kind: str) -> Iterator[tuple[int, dict[str, str]]]:
    with closing(read_records(source)) as records:
        header = next((r for r in records if any(cell.strip() for cell in r[2])), None)
        if header is None:
            raise BadInput(f"The file is empty; it needs a header row: {','.join(FIELDS[kind])}.")
        mapping = report.mapping = map_header(header[2], kind=kind, line=header[0], overrides=overrides)
        for line, _last, cells in records:
            if not any(cell.strip() for cell in cells):
                continue
            yield line, {name: mapping.value(name, cells[i]) if i < len(cells) else ""
                         for name, i in mapping.columns.items()}


def import_touches(
    session: Session,
    *,
    workspace: Workspace,
    rows: IO[bytes] | IO[str],
    by: str,
    now: datetime,
    skip_bad: bool = False,
    columns: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RowsReport:
    """Log each row as a touch on the customer it names (by name, as the companies import matched it), with the
    contact when the decision chain has that person. A touch already there is not logged again, so a second
    import of the same file changes nothing. Bad rows are reported by line; unless `skip_bad`, any bad row
    refuses the file (TouchesRefused) and nothing is written."""
    return _import(session, workspace=workspace, rows=rows, kind="touches", skip_bad=skip_bad, columns=columns,
                   progress=progress,
                   one=lambda values, customers, report: _touch(session, workspace=workspace, values=values, by=by,
                                                                now=now, customers=customers, report=report))


def import_contacts(
    session: Session,
    *,
    workspace: Workspace,
    rows: IO[bytes] | IO[str],
    by: str,
    now: datetime,
    skip_bad: bool = False,
    columns: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RowsReport:
    """Add each row's person to the decision chain of the customer it names (set_contact: a new person's level
    goes into history), or update their role and level; a person already there as the row says is left alone,
    so a second import of the same file changes nothing. Bad rows as import_touches."""
    actor = Actor(user_id=by, is_admin=True)  # the command line is the workspace's admin
    return _import(session, workspace=workspace, rows=rows, kind="contacts", skip_bad=skip_bad, columns=columns,
                   progress=progress,
                   one=lambda values, customers, report: _contact(session, workspace=workspace, values=values,
                                                                  actor=actor, now=now, customers=customers,
                                                                  report=report))


def _import(session: Session, *, workspace: Workspace, rows, kind: str, skip_bad: bool, columns, progress,
            one) -> RowsReport:
    report = RowsReport()
    customers: dict[str, Customer | None] = {}
    with session.begin_nested():
        for line, values in _rows(rows, report, columns, kind=kind):
            report.rows += 1
            try:
                one(values, customers, report)
            except BadInput as exc:
                report.bad.append((line, exc.message[0].lower() + exc.message[1:]))
            if progress and report.rows % BATCH == 0:
                progress(report.rows)
        if progress:
            progress(report.rows)
        if report.bad and not skip_bad:
            raise RowsRefused(report)
    return report


def _customer(session: Session, *, workspace: Workspace, values: dict[str, str],
              customers: dict[str, Customer | None]) -> Customer:
    company = values.get("company", "").strip()
    if not company:
        raise BadInput("The company is empty.")
    key = name_key(company)
    if key not in customers:
        customers[key] = session.scalars(
            select(Customer).where(Customer.workspace_id == workspace.id, Customer.name_key == key)).first()
    customer = customers[key]
    if customer is None:
        raise BadInput(f"No customer “{company}”; import the companies first.")
    return customer


def _contact(session: Session, *, workspace: Workspace, values: dict[str, str], actor: Actor, now: datetime,
             customers: dict[str, Customer | None], report: RowsReport) -> None:
    customer = _customer(session, workspace=workspace, values=values, customers=customers)
    name = values.get("name", "").strip() or " ".join(
        part for part in (values.get("first_name", "").strip(), values.get("last_name", "").strip()) if part)
    if not name:
        raise BadInput("The contact's name is empty.")
    role = parse_choice(ContactRole, values["role"]).value if values.get("role", "").strip() else None
    level = int(parse_choice(RelationshipLevel, values["level"])) if values.get("level", "").strip() else None
    known = session.scalars(select(Contact).where(Contact.customer_id == customer.id,
                                                  Contact.name_key == name_key(name))).first()
    if known is not None and (role or known.role) == known.role and (level or known.level) == known.level:
        report.unchanged += 1
        return
    _contact_row, created = set_contact(session, workspace=workspace, customer=customer, name=name, actor=actor,
                                        now=now, role=role, level=level, reason=REASON)
    if created:
        report.added += 1
    else:
        report.updated += 1


def _touch(session: Session, *, workspace: Workspace, values: dict[str, str], by: str, now: datetime,
           customers: dict[str, Customer | None], report: RowsReport) -> None:
    customer = _customer(session, workspace=workspace, values=values, customers=customers)
    summary = clean_text(values.get("summary", ""), what="summary", limit=SUMMARY_MAX)  # as log_touch keeps it
    when = values.get("date", "").strip()
    at = parse_when(when) if when else now
    kind = parse_choice(TouchKind, values.get("kind", "").strip() or TouchKind.note.value).value
    contact = None
    if values.get("contact", "").strip():
        contact = session.scalars(select(Contact).where(
            Contact.customer_id == customer.id, Contact.name_key == name_key(values["contact"].strip()))).first()
    already = session.scalars(select(Interaction.id).where(
        Interaction.customer_id == customer.id, Interaction.at == at, Interaction.kind == kind,
        Interaction.summary == summary).limit(1)).first()
    if already is not None:
        report.unchanged += 1
        return
    log_touch(session, workspace=workspace, customer=customer, kind=kind, summary=summary, by=by, now=now, at=at,
              contact=contact)
    report.added += 1
