"""Which column of an import file fills which field, from the table of known headers (import_columns) and
the importer's own `Source column=field` overrides, and how the values of a column translate."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from bot.errors import BadInput
from bot.services.import_columns import FIELDS, HEADERS, REQUIRED, VALUES

_NOT_WORD = re.compile(r"[\W_]+")


def fold(header: str) -> str:
    """`Company name`, `company_name`, ` COMPANY-NAME ` → `companyname` (and a BOM is dropped)."""
    return _NOT_WORD.sub("", header.replace("\ufeff", "").casefold())


def parse_overrides(lines: list[str], *, kind: str = "companies") -> dict[str, str]:
    """`Source column=field` lines (from --map, or a --map-file) → {folded source column: field or ""}.

    `Column=` (no field) leaves that column unread. Blank lines and `#` comments are skipped.
    """
    fields = FIELDS[kind]
    overrides: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        column, sep, target = line.rpartition("=")
        column, target = column.strip(), target.strip().lower()
        if not sep or not column:
            raise BadInput(f"“{line}” is not a column mapping.", hint="Write it as 'Source column=field', "
                           f"with field one of: {', '.join(fields)} (or nothing, to leave the column unread).")
        if target and target not in fields:
            raise BadInput(f"“{target}” in “{line}” is not a field of {kind}.",
                           hint=f"The fields are: {', '.join(fields)} (or nothing, to leave the column unread).")
        overrides[fold(column)] = target
    return overrides


@dataclass
class Mapping:
    """How one file's header is read: field → column index, the columns left unread, the value translations."""

    kind: str
    header: list[str]
    line: int
    columns: dict[str, int]
    sources: list[str]  # the tools whose column names were recognised, most matches first
    ignored: list[str]
    overridden: set[str] = field(default_factory=set)  # fields set by --map
    translated: Counter = field(default_factory=Counter)  # (field, source value, Rapport's value) → rows

    def index(self) -> list[int | None]:
        """The column index of each of the kind's fields, in FIELDS order (None: not in the file)."""
        return [self.columns.get(name) for name in FIELDS[self.kind]]

    def value(self, field_: str, cell: str) -> str:
        """The cell's value for Rapport: a known source value translated (and counted), else as written."""
        table = VALUES[self.kind].get(field_)
        if not table or not cell:
            return cell
        stripped = cell.strip()
        mapped = table.get(stripped.casefold())
        if mapped is None or mapped == stripped:
            return cell
        self.translated[(field_, stripped, mapped)] += 1
        return mapped

    def lines(self) -> list[str]:
        """The mapping in words, as printed before anything is written."""
        shown = [f"{self.header[index]} → {name}" + (" (--map)" if name in self.overridden else "")
                 for name, index in sorted(self.columns.items(), key=lambda item: item[1])]
        found = f"{' and '.join(self.sources)} column names" if self.sources else "columns"
        out = [f"reading {self.kind} from {found} (header on line {self.line}): " + "; ".join(shown)]
        if self.ignored:
            out.append(f"columns not read ({len(self.ignored):,}): " + ", ".join(f"“{name}”" for name in self.ignored))
        return out

    def translations(self) -> list[str]:
        """The value translations made, with how many rows each: `stage: “Customer” → active (3 rows)`."""
        return [f"{name}: “{source}” → {target or '(empty)'} ({count:,} row{'s' if count != 1 else ''})"
                for (name, source, target), count in sorted(self.translated.items())]


def guess_kind(header: list[str]) -> str:
    """companies, contacts or touches, from the header: touches when it names a company, a summary and a date
    or an activity type; contacts when it names a company and a person; else companies."""
    def mapped(kind: str) -> set[str]:
        try:
            return set(map_header(header, kind=kind).columns)
        except BadInput:
            return set()

    touches = mapped("touches")
    if "summary" in touches and touches & {"date", "kind"}:
        return "touches"
    if mapped("contacts") & {"name", "first_name", "last_name"}:
        return "contacts"
    return "companies"


def map_header(header: list[str], *, kind: str = "companies", line: int = 1,
               overrides: dict[str, str] | None = None) -> Mapping:
    """Read a header: each field from the override naming it, else the first of its known headers present."""
    overrides = overrides or {}
    folded = [fold(cell) for cell in header]
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(folded):
        if name:
            positions.setdefault(name, []).append(i)
    columns: dict[str, int] = {}
    overridden: set[str] = set()
    claimed: set[str] = set()
    for name, target in overrides.items():
        if name not in positions:
            raise BadInput(f"--map names a column “{name}” that the header (line {line}) does not have.",
                           hint="The header has: " + ", ".join(f"“{cell}”" for cell in header if cell.strip()) + ".")
        claimed.add(name)
        if target:
            if target in columns:
                raise BadInput(f"--map gives {target} two columns; give it one.")
            columns[target] = positions[name][0]
            overridden.add(target)
    hits: Counter = Counter()
    for target, known in HEADERS[kind].items():
        if target in columns:
            continue
        for known_header, source in known:
            name = fold(known_header)
            if name in positions and name not in claimed:
                if len(positions[name]) > 1:
                    raise BadInput(f"The header names “{header[positions[name][0]].strip()}” more than once "
                                   f"(line {line}).", hint="Rename or delete one of them, or choose one with --map.")
                columns[target] = positions[name][0]
                claimed.add(name)
                hits[source] += 1
                break
    required = REQUIRED[kind]
    if required not in columns:
        known = ", ".join(f"“{h}” ({source})" for h, source in HEADERS[kind][required])
        raise BadInput(f"The header (line {line}) has no “{required}” column.",
                       hint=f"Rapport finds the {required} in a column called {known}; or say which with "
                            f"--map 'Your column={required}'.")
    used = set(columns.values())
    ignored = [cell.replace("\ufeff", "").strip() for i, cell in enumerate(header) if cell.strip() and i not in used]
    sources = [source for source, _count in hits.most_common()]
    if len(sources) > 1 and "Rapport" in sources:  # `date`, `name`…: words every tool uses, Rapport's too
        sources.remove("Rapport")
    return Mapping(kind=kind, header=[cell.replace("\ufeff", "").strip() for cell in header], line=line,
                   columns=columns, sources=sources, ignored=ignored, overridden=overridden)
