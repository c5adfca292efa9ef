"""CSV import and export of customers: streamed in batches, idempotent by name, all or nothing unless told."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import IO, Any, NamedTuple, TextIO

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from bot.errors import BadInput, LookupFailed
from bot.services.customers import cadence_days
from bot.services.import_columns import FIELDS
from bot.services.mapping import Mapping, map_header
from bot.services.names import CHANNEL_ID, USER_ID, clean_name, name_key
from bot.services.people import not_teammate, outsider, remember_person
from bot.services.tables import first_row, read_records
from bot.services.vocabulary import parse_choice
from models import Contact, Customer, RelationshipChange, SlackUser, Workspace
from models.customer import NAME_MAX
from models.enums import ContactRole, HistoryField, OrgRelationship, RelationshipLevel, Stage, Tier
from models.types import UTCDateTime

COLUMNS = FIELDS["companies"]  # Rapport's own format, as export writes it
BATCH = 1000  # rows per round of queries: big enough for executemany to pay, small enough to keep memory flat
REASON = "CSV import"
SHOWN_BAD = 20
SQLITE_CACHE_KB = 16 * 1024
KEY_MAX = NAME_MAX * 3  # the name_key column; NFKC can make a name longer than it looks

_USER_MENTION = re.compile(rf"<@({USER_ID.pattern})(?:\|[^>]*)?>")
_CHANNEL_MENTION = re.compile(rf"<#({CHANNEL_ID.pattern})(?:\|[^>]*)?>")
# A spreadsheet evaluates a cell that starts with one of these (CSV injection); exports prefix it with ' .
_FORMULA_START = ("=", "+", "-", "@")

CUSTOMERS = Customer.__table__
CONTACTS = Contact.__table__
CHANGES = RelationshipChange.__table__


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    contacts_added: int = 0
    contacts_updated: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    rows: int = 0  # data rows read, good and bad (blank rows are not counted)
    owners_asked: int = 0  # owner e-mails not in the people cache, asked of Slack
    mapping: Mapping | None = None  # how the header was read: columns used, not read, values translated

    @property
    def ignored_columns(self) -> list[str]:
        return self.mapping.ignored if self.mapping else []


# e-mail → the Slack user object (users.lookupByEmail's `user`), None when nobody has it; raises LookupFailed.
AskSlack = Callable[[str], "dict | None"]


class ImportRefused(BadInput):
    """The file has bad rows and skip_bad was not given: raised so the caller's transaction rolls back whole."""

    def __init__(self, report: ImportReport):
        count = len(report.bad)
        shown = "\n".join(f"line {line}: {message}" for line, message in report.bad[:SHOWN_BAD])
        more = f"\n… and {count - SHOWN_BAD:,} more." if count > SHOWN_BAD else ""
        super().__init__(
            f"{count:,} bad row{'s' if count != 1 else ''} in the file; nothing was imported.\n{shown}{more}",
            hint="Fix those rows and import again, or skip the bad rows to import the others.",
        )
        self.report = report


# -- reading a row ------------------------------------------------------------------------------------------


class _Bad(Exception):
    """One row cannot be imported; the message says why (it is shown after `line N: `)."""


@dataclass(slots=True)
class _Row:
    line: int
    name: str
    key: str
    tier: str | None
    stage: str | None
    org: str | None
    owner: str | None
    channel: str | None
    contacts: list[tuple[str, str, str | None, int | None]]  # (name, key, role, level)


def _sentence(message: str) -> str:
    """A domain message read after `line N: ` starts in lower case: `the customer name is empty.`"""
    if len(message) > 1 and message[0].isupper() and (message[1].islower() or message[1] == " "):
        return message[0].lower() + message[1:]
    return message


def _said(exc: BadInput) -> str:
    return _sentence(exc.message) + (f" {exc.hint}" if exc.hint else "")


@lru_cache(maxsize=512)  # a file repeats the same few words; bounded, so a hostile file cannot grow it
def _choice(enum, value: str) -> tuple[str | int | None, str | None]:
    try:
        return parse_choice(enum, value).value, None
    except BadInput as exc:
        return None, _said(exc)


def _word(enum, column: str, value: str):
    if not value:
        return None
    value, error = _choice(enum, value)
    if error:
        raise _Bad(f"{column} {error}" if error.startswith("“") else error)  # `tier “gold” is not a tier.`
    return value


def _restore(cell: str) -> str:
    """Undo export's `'` guard against spreadsheet formulas (`'=x` → `=x`, `''=x` → `'=x`)."""
    if cell.startswith("'") and cell.lstrip("'")[:1] in _FORMULA_START and cell.lstrip("'"):
        return cell[1:]
    return cell


def _guard(cell: str) -> str:
    if cell.lstrip("'")[:1] in _FORMULA_START and cell.lstrip("'"):
        return "'" + cell
    return cell


def _split_escaped(value: str, sep: str) -> list[str]:
    """Split on `sep` where not escaped; `\\:` `\\;` `\\\\` stand for themselves, any other backslash is kept."""
    if "\\" not in value:
        return value.split(sep)
    parts, current, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "\\:;":
            current.append("\\" + value[i + 1])  # kept escaped until the inner split is done
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return re.sub(r"\\([\\:;])", r"\1", value)


def _escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace(":", "\\:").replace(";", "\\;")


def _contacts(cell: str) -> list[tuple[str, str, str | None, int | None]]:
    found: list[tuple[str, str, str | None, int | None]] = []
    seen: set[str] = set()
    for part in _split_escaped(cell, ";"):
        if not part.strip():
            continue
        fields = _split_escaped(part, ":")
        if len(fields) > 3:
            raise _Bad(f"contact “{_unescape(part.strip())}” has more than name:role:level "
                       "(write a colon in a name as \\:).")
        raw_name = _unescape(fields[0]).strip()
        try:
            name = clean_name(raw_name, what="contact name", limit=NAME_MAX)
        except BadInput as exc:
            raise _Bad(f"contact “{raw_name}”: {_said(exc)}" if raw_name else f"contacts: {_said(exc)}") from None
        key = name_key(name)
        if len(key) > KEY_MAX:
            raise _Bad(f"contact “{name[:40]}…”: the name is too long once normalised.")
        if key in seen:
            raise _Bad(f"contact “{name}” is listed twice.")
        seen.add(key)
        role = fields[1].strip() if len(fields) > 1 else ""
        level = fields[2].strip() if len(fields) > 2 else ""
        try:
            role_value = _word(ContactRole, "role", role)
            level_value = _word(RelationshipLevel, "level", level)
        except _Bad as exc:
            raise _Bad(f"contact “{name}”: {exc}") from None
        found.append((name, key, role_value, level_value))
    return found


class _Known(NamedTuple):
    user_id: str  # "": several live people share the e-mail
    deleted: bool = False
    outside: bool = False  # a guest, or from another organisation (Slack Connect)


_NOT_TEAMMATE = {"other_org": "from another organisation", "guest": "a guest", "bot": "a bot",
                 "unknown": "unknown to Slack"}


class _People:
    """Owner e-mails resolved through the people cache (SlackUser), read once on the first e-mail; an e-mail
    the cache does not know is asked of Slack once (`ask_slack`), and the answer joins the cache."""

    def __init__(self, session: Session, workspace_id: str, *, now: datetime, ask_slack: AskSlack | None,
                 report: ImportReport):
        self.session = session
        self.workspace_id = workspace_id
        self.now = now
        self.ask_slack = ask_slack
        self.report = report
        self.by_email: dict[str, _Known] | None = None
        self.by_id: dict[str, str | None] | None = None  # user id → not_teammate's reason, for cached people
        self.unknown: dict[str, str] = {}  # email → why no one was found (Slack is asked once per e-mail)

    def owner(self, value: str) -> str | None:
        email = _owner_email(value)
        if email is None:
            if not value:
                return None
            mention = _USER_MENTION.fullmatch(value)
            if USER_ID.fullmatch(value) or mention:
                return self._by_id(value, mention.group(1) if mention else value)
            raise _Bad(f"owner “{value}” is neither a Slack user id (like U0ALICE) nor an e-mail address.")
        if self.by_email is None:
            self.by_email = _cached_emails(self.session, self.workspace_id)
        found = self.by_email.get(email) or self._ask(email)
        if found is None:
            raise _Bad(f"owner “{value}”: {self.unknown[email]}; give their Slack user id (U…) instead.")
        if not found.user_id:
            raise _Bad(f"owner “{value}”: several Slack users have this e-mail; give the user id (U…) instead.")
        if found.deleted:
            raise _Bad(f"owner “{value}” is a deactivated Slack user ({found.user_id}).")
        if found.outside:
            raise _Bad(f"owner “{value}” is a guest or from another organisation ({found.user_id}); owners are "
                       "members of our own team.")
        return found.user_id

    def _by_id(self, value: str, user_id: str) -> str:
        """An owner given by id: refused when the people cache knows them as outside our team (not_teammate);
        one Slack has never told us about is taken as given (an import may run without a bot token)."""
        if self.by_id is None:
            self.by_id = {person.user_id: not_teammate(person, workspace_id=self.workspace_id)
                          for person in self.session.scalars(select(SlackUser)
                                                             .where(SlackUser.workspace_id == self.workspace_id))}
        why = self.by_id.get(user_id)
        if why == "deleted":
            raise _Bad(f"owner “{value}” is a deactivated Slack user ({user_id}).")
        if why is not None:
            raise _Bad(f"owner “{value}” is {_NOT_TEAMMATE[why]} ({user_id}); owners are members of our own team.")
        return user_id

    def _ask(self, email: str) -> _Known | None:
        if email in self.unknown:
            return None
        if self.ask_slack is None:
            self.unknown[email] = "no one with this e-mail is known in this workspace (Slack was not asked: no bot token)"
            return None
        self.report.owners_asked += 1
        try:
            info = self.ask_slack(email)
        except LookupFailed as exc:
            self.unknown[email] = f"Slack could not be asked who has this e-mail ({exc})"
            return None
        if info is None:
            self.unknown[email] = "no one in this Slack workspace has this e-mail"
            return None
        person = remember_person(self.session, workspace_id=self.workspace_id, info=info, now=self.now)
        self.by_email[email] = _Known(person.user_id, person.deleted,
                                      outsider(person.team_id, person.is_restricted, workspace_id=self.workspace_id))
        return self.by_email[email]


def _cached_emails(session: Session, workspace_id: str) -> dict[str, _Known]:
    """Everyone the people cache knows by e-mail (casefolded) in this workspace."""
    people: dict[str, _Known] = {}
    rows = session.execute(
        select(SlackUser.user_id, SlackUser.email, SlackUser.deleted, SlackUser.team_id, SlackUser.is_restricted)
        .where(SlackUser.workspace_id == workspace_id, SlackUser.email.is_not(None))
    )
    for user_id, email, deleted, team_id, restricted in rows:
        email = email.strip().casefold()
        if not email:
            continue
        before = people.get(email)
        if before is None or (before.deleted and not deleted):
            people[email] = _Known(user_id, bool(deleted), outsider(team_id, bool(restricted), workspace_id=workspace_id))
        elif not deleted and not before.deleted:
            people[email] = _Known("")  # two live people share it: ambiguous
    return people


def _owner_email(value: str) -> str | None:
    """The e-mail (casefolded) an owner cell names; None for an id, a mention, nothing, or no e-mail at all."""
    if "@" not in value or USER_ID.fullmatch(value) or _USER_MENTION.fullmatch(value):
        return None
    return value.casefold()


def unknown_owner_emails(session: Session, *, workspace_id: str, rows: IO[bytes] | IO[str],
                         columns: dict[str, str] | None = None) -> list[str]:
    """The owner e-mails of a CSV that the people cache does not know (casefolded), read ahead of the import so
    Slack can be asked before the import's transaction opens (and holds the database meanwhile)."""
    owner = COLUMNS.index("owner")
    named = {_owner_email(values[owner].strip()) for _line, values in _file_records(rows, ImportReport(), columns) if isinstance(values, tuple)}
    named.discard(None)
    known = _cached_emails(session, workspace_id)
    return sorted(email for email in named if email not in known)


def asked_ahead(ask_slack: AskSlack, emails: list[str]) -> AskSlack:
    """Ask Slack about `emails` now; the returned AskSlack answers from what was said (and asks about others)."""
    answers: dict[str, dict | None | LookupFailed] = {}
    for email in emails:
        try:
            answers[email] = ask_slack(email)
        except LookupFailed as exc:
            answers[email] = exc

    def answer(email: str) -> dict | None:
        if email not in answers:
            return ask_slack(email)
        found = answers[email]
        if isinstance(found, LookupFailed):
            raise found
        return found

    return answer


def _channel(value: str) -> str | None:
    if not value:
        return None
    if CHANNEL_ID.fullmatch(value):
        return value
    mention = _CHANNEL_MENTION.fullmatch(value)
    if mention:
        return mention.group(1)
    raise _Bad(f"channel “{value}” is not a channel id; give the id (C…), shown at the bottom of the "
               "channel's details in Slack.")


def _parse(line: int, values: tuple[str, ...], people: _People) -> _Row:
    raw_name, tier, stage, org, owner, channel, contacts = (v.strip() for v in values)
    try:
        name = clean_name(_restore(raw_name), what="customer name", limit=NAME_MAX)
    except BadInput as exc:
        raise _Bad(_said(exc)) from None
    key = name_key(name)
    if len(key) > KEY_MAX:
        raise _Bad("the customer name is too long once normalised.")
    return _Row(
        line=line,
        name=name,
        key=key,
        tier=_word(Tier, "tier", tier),
        stage=_word(Stage, "stage", stage),
        org=_word(OrgRelationship, "org", org),
        owner=people.owner(owner),
        channel=_channel(channel),
        contacts=_contacts(_restore(contacts)) if contacts else [],
    )


# -- reading a file ------------------------------------------------------------------------------------------

# (line, values in COLUMNS order) or (line, error message) for a row that is broken as CSV.
_Record = tuple[int, tuple[str, ...] | str]


def header_mapping(source: IO[bytes] | IO[str], *, kind: str = "companies",
                   overrides: dict[str, str] | None = None) -> Mapping:
    """How the file's header will be read (to show before importing); the stream is read from where it is."""
    header = first_row(source)
    if header is None:
        raise BadInput(f"The file is empty; it needs a header row: {','.join(FIELDS[kind])}.")
    return map_header(header[1], kind=kind, line=header[0], overrides=overrides)


def _file_records(source: IO[bytes] | IO[str], report: ImportReport,
                  overrides: dict[str, str] | None = None) -> Iterator[_Record]:
    """The data rows of a CSV or .xlsx file (tables.read_records) in COLUMNS order, read through the header's
    mapping (import_columns: HubSpot's, Salesforce's, Pipedrive's and Rapport's names); the columns it does not
    know are not read, and listed in the report (a CRM's export has dozens)."""
    records = read_records(source)
    header = next((record for record in records if any(cell.strip() for cell in record[2])), None)
    if header is None:
        raise BadInput(f"The file is empty; it needs a header row: {','.join(COLUMNS)}.")
    mapping = report.mapping = map_header(header[2], kind="companies", line=header[0], overrides=overrides)
    index = list(enumerate(mapping.index()))
    used = set(mapping.columns.values())
    width = len(header[2])
    for line, last, record in records:
        if len(record) > width and not any(cell.strip() for cell in record[width:]):
            record = record[:width]  # a spreadsheet's empty cells past the header's last column
        if len(record) != width:
            if not any(cell.strip() for cell in record):
                continue  # a blank line, or a spreadsheet's empty row
            count = f"{len(record)} value{'s' if len(record) != 1 else ''}"
            if last > line:  # a quoted value ran over several lines
                yield line, (f"the row runs to line {last} and has {count} but the header has {width} "
                             "columns (a quote opened and never closed?).")
            else:
                yield line, (f"the row has {count} but the header has {width} columns "
                             "(a comma or a quote out of place?).")
            continue
        if not any(record[i].strip() for i in used):
            if any(cell.strip() for cell in record):
                yield line, "the row has values only in columns that are not read."
            continue
        yield line, tuple("" if i is None else mapping.value(COLUMNS[n], record[i]) for n, i in index)


def _dict_records(rows: Iterable[tuple[int, dict]], report: ImportReport,
                  overrides: dict[str, str] | None = None) -> Iterator[_Record]:
    mappings: dict[tuple[str, ...], Mapping] = {}  # one per set of keys (rows from one source share theirs)
    for line, row in rows:
        keys = tuple(str(column) for column in row)
        mapping = mappings.get(keys)
        if mapping is None:
            mapping = mappings[keys] = map_header(list(keys), kind="companies", line=line, overrides=overrides)
            if report.mapping is None:
                report.mapping = mapping
            else:
                report.mapping.ignored.extend(name for name in mapping.ignored if name not in report.mapping.ignored)
        cells = ["" if value is None else str(value) for value in row.values()]
        yield line, tuple("" if i is None else mapping.value(COLUMNS[n], cells[i])
                          for n, i in enumerate(mapping.index()))


# -- writing ---------------------------------------------------------------------------------------------------


def _seen_table() -> Table:
    # Names already read from this file, with their line, kept in the database rather than in memory so a
    # million-row file costs no more memory than a thousand-row one. Temporary: private to this connection.
    return Table(
        "rapport_import_seen", MetaData(),
        Column("name_key", String, primary_key=True),
        Column("line", Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )


class _Converted(TypeDecorator):
    """A time UTCDateTime already converted for this database: the import's few instants (now, the revisit
    due dates) are converted once, not once per row — with three per customer that was a fifth of the time."""

    impl = DateTime
    cache_ok = True

    def bind_processor(self, dialect):
        return None


def _at(name: str):
    return bindparam(name, type_=_Converted())


def _mirror(table: Table) -> Table:
    """`table` with its UTCDateTime columns typed _Converted, for inserting rows whose times are converted."""
    return Table(table.name, MetaData(), *[
        Column(column.name, _Converted() if isinstance(column.type, UTCDateTime) else column.type,
               primary_key=column.primary_key)
        for column in table.columns
    ])


def _insert(session: Session, table: Table, rows: list[dict], *returning: str):
    """Insert rows (dicts with the same keys) in bulk, returning the `returning` columns of each.

    executemany, except on PostgreSQL: there one INSERT … SELECT FROM json_populate_recordset(one JSON text)
    per batch — executemany sends a statement per row, a thousand-row VALUES list is re-parsed by psycopg for
    every batch, and arrays per column are quoted element by element in Python; JSON is dumped in C.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        quote = bind.dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in rows[0])
        sql = (f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} "
               f"FROM json_populate_recordset(NULL::{quote(table.name)}, :rows)")
        if returning:
            sql += " RETURNING " + ", ".join(quote(name) for name in returning)
        return session.execute(text(sql), {"rows": json.dumps(rows, default=str, ensure_ascii=False)})
    statement = insert(table)
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
    return session.execute(statement, rows)


DEFAULT_TIER, DEFAULT_STAGE, DEFAULT_ORG = Tier.general.value, Stage.prospect.value, OrgRelationship.vendor.value
DEFAULT_ROLE, DEFAULT_LEVEL = ContactRole.influencer.value, RelationshipLevel.contact.value
_STATE = ((HistoryField.tier.value, "b_tier", "tier"), (HistoryField.stage.value, "b_stage", "stage"),
          (HistoryField.org.value, "b_org", "org"), (HistoryField.owner.value, "b_owner", "owner"))

c, k = CUSTOMERS.c, CONTACTS.c
NEW_CUSTOMERS, NEW_CONTACTS, NEW_CHANGES = _mirror(CUSTOMERS), _mirror(CONTACTS), _mirror(CHANGES)
UPDATE_CUSTOMERS = update(CUSTOMERS).where(c.id == bindparam("b_id")).values(
    name=bindparam("b_name"), tier=bindparam("b_tier"), stage=bindparam("b_stage"),
    org_relationship=bindparam("b_org"), owner_id=bindparam("b_owner"), channel_id=bindparam("b_channel"),
    revisit_due_at=bindparam("b_due"), updated_at=_at("b_now"),
)
UPDATE_CONTACTS = update(CONTACTS).where(k.id == bindparam("b_id")).values(
    name=bindparam("b_name"), role=bindparam("b_role"), level=bindparam("b_level"), updated_at=_at("b_now"),
)
EXISTING_CUSTOMERS = select(
    c.id, c.name, c.name_key, c.tier, c.stage, c.org_relationship, c.owner_id, c.channel_id, c.created_at,
    c.last_touch_at, c.revisit_due_at,
)
EXISTING_CONTACTS = select(k.id, k.customer_id, k.name, k.name_key, k.role, k.level)


class _Importer:
    def __init__(self, session: Session, *, workspace: Workspace, by: str, now: datetime, skip_bad: bool,
                 ask_slack: AskSlack | None):
        self.session = session
        self.workspace = workspace
        self.by = by
        self.now = now
        self.skip_bad = skip_bad
        self.report = ImportReport()
        self.people = _People(session, workspace.id, now=now, ask_slack=ask_slack, report=self.report)
        self.seen = _seen_table()
        self.pending_bad: list[tuple[int, str]] = []
        self.batches = 0
        self.sqlite_cache: int | None = None
        dialect = session.get_bind().dialect
        self.postgres = dialect.name == "postgresql"
        convert = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)  # as a UTCDateTime column stores it
        self.db_now = convert(now)
        self.db_due = {
            tier.value: convert(now + timedelta(days=cadence_days(workspace, tier))) for tier in Tier
        }

    @property
    def writing(self) -> bool:
        # After the first bad row of a strict import nothing will be committed: keep reading only to report.
        return self.skip_bad or not (self.report.bad or self.pending_bad)

    def open(self) -> None:
        connection = self.session.connection()
        self.seen.drop(connection, checkfirst=True)
        self.seen.create(connection)
        if connection.dialect.name == "sqlite":
            # SQLite's default 2 MB page cache spills the growing indexes to the WAL and reads them back, over
            # and over in a big transaction: 16 MB cut the importer's CPU by 15% at 100k rows, and stays bounded.
            self.sqlite_cache = connection.exec_driver_sql("PRAGMA cache_size").scalar()
            connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")

    def close(self) -> None:
        connection = self.session.connection()
        self.seen.drop(connection, checkfirst=True)
        if self.sqlite_cache is not None:  # (after an error the session's end closes the connection anyway)
            connection.exec_driver_sql(f"PRAGMA cache_size = {int(self.sqlite_cache)}")

    def parse(self, line: int, values: tuple[str, ...] | str) -> _Row | None:
        if isinstance(values, str):
            self.pending_bad.append((line, values))
            return None
        try:
            return _parse(line, values, self.people)
        except _Bad as exc:
            self.pending_bad.append((line, str(exc)))
            return None

    def flush(self, rows: list[_Row]) -> None:
        rows = self._without_duplicates(rows)
        if self.writing and rows:
            self._write(rows)
        if self.pending_bad:
            self.report.bad.extend(sorted(self.pending_bad))
            self.pending_bad = []
        self.batches += 1
        if self.postgres and self.batches & (self.batches - 1) == 0:
            # PostgreSQL plans the batch lookups from table statistics, which know nothing of the rows this
            # transaction added: past a few batches (when psycopg prepares the query and PostgreSQL switches to a
            # generic plan) it scanned the whole workspace for every batch, 2.8 s a batch at 50k customers.
            # ANALYZE counts our own uncommitted rows; doing it as the tables double keeps the plans on the indexes.
            self.session.execute(text(f"ANALYZE {CUSTOMERS.name}, {CONTACTS.name}, {self.seen.name}"))

    def _without_duplicates(self, rows: list[_Row]) -> list[_Row]:
        if not rows:
            return rows
        seen = self.seen.c
        earlier = dict(
            self.session.execute(select(seen.name_key, seen.line).where(seen.name_key.in_([r.key for r in rows])))
            .all()
        )
        kept: list[_Row] = []
        for row in rows:
            first = earlier.get(row.key)
            if first is not None:
                self.pending_bad.append((row.line, f"same name as line {first} (“{row.name}”)."))
                continue
            earlier[row.key] = row.line
            kept.append(row)
        if kept:
            _insert(self.session, self.seen, [{"name_key": r.key, "line": r.line} for r in kept])
        return kept

    def _write(self, rows: list[_Row]) -> None:
        """One batch: one query for the customers it names, then inserts and updates as executemany."""
        session = self.session
        existing = {
            row.name_key: row
            for row in session.execute(
                EXISTING_CUSTOMERS.where(c.workspace_id == self.workspace.id, c.name_key.in_([r.key for r in rows]))
            )
        }
        ids: dict[str, int] = {}
        new_rows = [r for r in rows if r.key not in existing]
        if new_rows:
            created = _insert(session, NEW_CUSTOMERS, [self._new_customer(r) for r in new_rows], "id", "name_key")
            ids = {key: id_ for id_, key in created}
            self.report.created += len(new_rows)

        changes: list[dict] = []
        customer_updates: dict[int, dict] = {}
        for row in rows:
            current = existing.get(row.key)
            if current is not None:
                ids[row.key] = current.id
                if self._customer_changes(row, current, changes):
                    customer_updates[current.id] = self._customer_values(row, current)

        contact_inserts, contact_updates, touched = self._contact_changes(rows, existing, ids, changes)
        for key in touched:  # a changed decision chain makes the customer updated too
            current = existing[key]
            if current.id not in customer_updates:
                customer_updates[current.id] = self._customer_values(None, current)

        if contact_inserts:
            added = _insert(session, NEW_CONTACTS, contact_inserts, "id", "customer_id", "level")
            for contact_id, customer_id, level in added:
                changes.append(self._change(customer_id, HistoryField.level.value, None, level, contact_id))
            self.report.contacts_added += len(contact_inserts)
        if contact_updates:
            session.execute(UPDATE_CONTACTS, contact_updates)
            self.report.contacts_updated += len(contact_updates)
        if customer_updates:
            session.execute(UPDATE_CUSTOMERS, list(customer_updates.values()))
        if changes:
            _insert(session, NEW_CHANGES, changes)
        self.report.updated += len(customer_updates)
        self.report.unchanged += len(existing) - len(customer_updates)

    def _new_customer(self, row: _Row) -> dict:
        tier = row.tier or DEFAULT_TIER
        return {
            "workspace_id": self.workspace.id, "name": row.name, "name_key": row.key, "tier": tier,
            "stage": row.stage or DEFAULT_STAGE, "org_relationship": row.org or DEFAULT_ORG, "owner_id": row.owner,
            "channel_id": row.channel, "created_by": self.by, "last_touch_at": None,
            "created_at": self.db_now, "updated_at": self.db_now, "revisit_due_at": self.db_due[tier],
        }

    def _change(self, customer_id: int, field_: str, before, after, contact_id: int | None = None) -> dict:
        return {
            "workspace_id": self.workspace.id, "customer_id": customer_id, "field": field_, "contact_id": contact_id,
            "from_value": None if before is None else str(before), "to_value": str(after), "by_user": self.by,
            "reason": REASON, "at": self.db_now,
        }

    def _customer_changes(self, row: _Row, current, changes: list[dict]) -> bool:
        """Whether the row changes an existing customer; state changes go into history as change_state does."""
        changed = row.name != current.name  # same name_key, new spelling: the file's wins, as rename does
        before = {"tier": current.tier, "stage": current.stage, "org": current.org_relationship,
                  "owner": current.owner_id}
        for field_, _slot, attr in _STATE:
            value = getattr(row, attr)
            if value is not None and value != before[attr]:
                changes.append(self._change(current.id, field_, before[attr], value))
                changed = True
        return changed or (row.channel is not None and row.channel != current.channel_id)

    def _customer_values(self, row: _Row | None, current) -> dict:
        values = {
            "b_id": current.id, "b_name": current.name, "b_tier": current.tier, "b_stage": current.stage,
            "b_org": current.org_relationship, "b_owner": current.owner_id, "b_channel": current.channel_id,
            "b_due": current.revisit_due_at, "b_now": self.db_now,
        }
        if row is None:
            return values
        values["b_name"] = row.name
        for _field, slot, attr in _STATE:
            if getattr(row, attr) is not None:
                values[slot] = getattr(row, attr)
        if row.channel is not None:
            values["b_channel"] = row.channel
        if row.tier is not None and row.tier != current.tier:
            start = current.last_touch_at or current.created_at
            values["b_due"] = start + timedelta(days=cadence_days(self.workspace, row.tier))
        return values

    def _contact_changes(self, rows: list[_Row], existing: dict, ids: dict[str, int], changes: list[dict]):
        """(contacts to insert, contacts to update, keys of existing customers whose decision chain changed)."""
        known: dict[int, dict[str, Any]] = {}
        listed = [existing[r.key].id for r in rows if r.contacts and r.key in existing]
        if listed:
            for contact in self.session.execute(EXISTING_CONTACTS.where(k.customer_id.in_(listed))):
                known.setdefault(contact.customer_id, {})[contact.name_key] = contact
        inserts: list[dict] = []
        updates: list[dict] = []
        touched: list[str] = []
        for row in rows:
            if not row.contacts:
                continue
            customer_id = ids[row.key]
            chain = known.get(customer_id, {})
            changed = False
            for name, key, role, level in row.contacts:
                contact = chain.get(key)
                if contact is None:
                    inserts.append({
                        "workspace_id": self.workspace.id, "customer_id": customer_id, "name": name, "name_key": key,
                        "role": role or DEFAULT_ROLE, "level": level or DEFAULT_LEVEL, "slack_user_id": None,
                        "created_at": self.db_now, "updated_at": self.db_now,
                    })
                    changed = True
                    continue
                new_role = contact.role if role is None else role
                new_level = contact.level if level is None else level
                if (name, new_role, new_level) == (contact.name, contact.role, contact.level):
                    continue
                if new_level != contact.level:
                    changes.append(self._change(customer_id, HistoryField.level.value, contact.level, new_level,
                                                contact.id))
                updates.append({"b_id": contact.id, "b_name": name, "b_role": new_role, "b_level": new_level,
                                "b_now": self.db_now})
                changed = True
            if changed and row.key in existing:
                touched.append(row.key)
        return inserts, updates, touched


def import_customers(
    session: Session,
    *,
    workspace: Workspace,
    rows: IO[bytes] | IO[str] | Iterable[tuple[int, dict]],
    by: str,
    now: datetime,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
    ask_slack: AskSlack | None = None,
    columns: dict[str, str] | None = None,
) -> ImportReport:
    """Create or update customers (and their decision chains) from a CSV or .xlsx file (bytes, or CSV text;
    tables.read_records) or (line, {column: value}) pairs. Columns Rapport does not know are listed in the
    report's ignored_columns. `columns` ({folded source column: field}, mapping.parse_overrides) overrides the
    table of known headers.

    Rows are matched to customers by name (name_key), so importing a file twice changes nothing the second
    time. Every bad row is reported with its line; unless `skip_bad`, a file with any bad row raises
    ImportRefused after reading it all, so the caller's transaction rolls back and nothing is written.
    `progress(rows_read)` is called after every batch. Owners given by an e-mail the people cache does not
    know are looked up with `ask_slack(email)` when given (bot.slack.people.find_by_email).
    """
    by = by.strip()
    if not USER_ID.fullmatch(by):
        raise BadInput(f"“{by}” is not a Slack user id (U…); say who is importing.")
    importer = _Importer(session, workspace=workspace, by=by, now=now, skip_bad=skip_bad, ask_slack=ask_slack)
    records = (_file_records(rows, importer.report, columns) if hasattr(rows, "read")
               else _dict_records(rows, importer.report, columns))
    # In a savepoint, rolled back on refusal: even a caller that catches ImportRefused and commits writes nothing.
    with session.begin_nested():
        importer.open()
        batch: list[_Row] = []
        read = 0
        for line, values in records:
            read += 1
            importer.report.rows = read
            row = importer.parse(line, values)
            if row is not None:
                batch.append(row)
            if read % BATCH == 0:
                importer.flush(batch)
                batch = []
                if progress:
                    progress(read)
        importer.flush(batch)
        if progress:
            progress(read)
        importer.close()
        if importer.report.bad and not skip_bad:
            raise ImportRefused(importer.report)
    return importer.report


# -- export ----------------------------------------------------------------------------------------------------


def export_customers(session: Session, *, workspace_id: str, out: TextIO) -> int:
    """Write the workspace's customers as CSV in the import format (a re-import changes nothing); returns the count.

    Read in pages of BATCH customers by id (keyset), each page with its contacts, so memory stays flat.
    """
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count, last = 0, 0
    while True:
        page = session.execute(
            select(c.id, c.name, c.tier, c.stage, c.org_relationship, c.owner_id, c.channel_id)
            .where(c.workspace_id == workspace_id, c.id > last)
            .order_by(c.id)
            .limit(BATCH)
        ).all()
        if not page:
            return count
        chains: dict[int, list[str]] = {}
        for customer_id, name, role, level in session.execute(
            select(k.customer_id, k.name, k.role, k.level)
            .where(k.customer_id.in_([row.id for row in page]))
            .order_by(k.customer_id, k.id)
        ):
            chains.setdefault(customer_id, []).append(f"{_escape(name)}:{role}:{level}")
        for row in page:
            writer.writerow([
                _guard(row.name), row.tier, row.stage, row.org_relationship, row.owner_id or "", row.channel_id or "",
                _guard("; ".join(chains.get(row.id, []))),
            ])
        count += len(page)
        last = page[-1].id


SURVEY_COLUMNS = ("survey_id", "customer", "kind", "channel", "sent_at", "closed_at", "respondent",
                  "respondent_team", "score", "comment", "answered_at")


def export_surveys(session: Session, *, workspace_id: str, out: TextIO) -> int:
    """Every survey answer of the workspace, one row each (surveys without answers get one empty row)."""
    from models import Survey, SurveyResponse

    writer = csv.writer(out)
    writer.writerow(SURVEY_COLUMNS)
    rows = session.exec(
        select(Survey, Customer.name, SurveyResponse)
        .join(Customer, Customer.id == Survey.customer_id)
        .outerjoin(SurveyResponse, SurveyResponse.survey_id == Survey.id)
        .where(Survey.workspace_id == workspace_id)
        .order_by(Survey.created_at, Survey.id, SurveyResponse.id)
        .execution_options(yield_per=1000)
    )
    count = 0
    iso = lambda moment: moment.isoformat() if moment else ""  # noqa: E731
    for survey, customer_name, response in rows:
        writer.writerow([
            survey.id, _guard(customer_name), survey.kind, survey.channel_id, iso(survey.created_at),
            iso(survey.closed_at), response.respondent_id if response else "",
            (response.respondent_team_id or "") if response else "", response.score if response else "",
            _guard(response.comment or "") if response else "", iso(response.answered_at) if response else "",
        ])
        count += 1
    return count
