"""Importing touches (calls, meetings, e-mails, notes) from a CRM's activity export: each becomes a touch logged
on its customer with its own date, through log_touch, so last touch and the next revisit move as if logged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from sqlalchemy import select
from sqlmodel import Session

from bot.errors import BadInput
from bot.services.customers import log_touch
from bot.services.mapping import Mapping, map_header
from bot.services.names import clean_text, name_key
from bot.services.transfer import SHOWN_BAD
from bot.services.vocabulary import parse_choice
from models import Contact, Customer, Interaction, Workspace
from models.customer import SUMMARY_MAX
from models.enums import TouchKind

BATCH = 1000
# How CRMs write an activity's time: ISO (HubSpot, Pipedrive, Rapport), and Salesforce's US report format.
_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M", "%m/%d/%Y")


@dataclass
class TouchReport:
    rows: int = 0
    added: int = 0
    unchanged: int = 0  # the same touch (customer, time, kind, summary) is already there
    bad: list[tuple[int, str]] = field(default_factory=list)
    mapping: Mapping | None = None


class TouchesRefused(BadInput):
    """Bad rows and no skip_bad: raised so the transaction rolls back whole."""

    def __init__(self, report: TouchReport):
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


def _rows(source: IO[bytes] | IO[str], report: TouchReport, overrides) -> Iterator[tuple[int, dict[str, str]]]:
    from bot.services.tables import read_records

    with closing(read_records(source)) as records:
        header = next((r for r in records if any(cell.strip() for cell in r[2])), None)
        if header is None:
            raise BadInput("The file is empty; it needs a header row: company,contact,kind,date,summary.")
        mapping = report.mapping = map_header(header[2], kind="touches", line=header[0], overrides=overrides)
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
) -> TouchReport:
    """Log each row as a touch on the customer it names (by name, as the companies import matched it), with the
    contact when the decision chain has that person. A touch already there is not logged again, so a second
    import of the same file changes nothing. Bad rows are reported by line; unless `skip_bad`, any bad row
    refuses the file (TouchesRefused) and nothing is written."""
    report = TouchReport()
    customers: dict[str, Customer | None] = {}
    with session.begin_nested():
        for line, values in _rows(rows, report, columns):
            report.rows += 1
            try:
                _one(session, workspace=workspace, values=values, by=by, now=now, customers=customers,
                     report=report)
            except BadInput as exc:
                report.bad.append((line, exc.message[0].lower() + exc.message[1:]))
            if progress and report.rows % BATCH == 0:
                progress(report.rows)
        if progress:
            progress(report.rows)
        if report.bad and not skip_bad:
            raise TouchesRefused(report)
    return report


def _one(session: Session, *, workspace: Workspace, values: dict[str, str], by: str, now: datetime,
         customers: dict[str, Customer | None], report: TouchReport) -> None:
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
