"""Reading a spreadsheet as rows: CSV in any common dialect (UTF-8 only) or .xlsx, streamed, with line numbers."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime, time
from typing import IO

from bot.errors import BadInput

DELIMITERS = ",;\t"  # what spreadsheets and CRMs write: comma, semicolon (European locales), tab
SAMPLE_CHARS = 64 * 1024  # what the dialect is guessed from: whole first lines up to this size
SPOOL_BYTES = 16 * 1024 * 1024  # standard input is copied aside to be read twice; beyond this, to disk

_ZIP = b"PK\x03\x04"  # .xlsx is a zip archive
_OLE = b"\xd0\xcf\x11\xe0"  # the old binary .xls
_UTF16 = (b"\xff\xfe", b"\xfe\xff")

# (first line, last line, cells): a quoted value with line breaks makes last > first.
Record = tuple[int, int, list[str]]

_FIX = ("Save it from the spreadsheet as “CSV UTF-8” (Excel: File › Save As › CSV UTF-8; LibreOffice: Text CSV, "
        "character set Unicode (UTF-8)), or convert it: iconv -f latin1 -t utf-8 FILE > FILE-utf8.csv")


def rewindable(stream: IO[bytes]) -> IO[bytes]:
    """A stream that can be read again from the start: itself, or standard input copied aside (flat memory)."""
    if stream.seekable():
        return stream
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (the caller closes it)
    shutil.copyfileobj(stream, spool)
    spool.seek(0)
    return spool


def read_records(source: IO[bytes] | IO[str]) -> Iterator[Record]:
    """Every row of a CSV (comma, semicolon or tab; quoted; BOM; CRLF) or .xlsx file, read as it goes.

    A binary stream is told apart by its first bytes: .xlsx (a zip), the old .xls (refused: save as .xlsx),
    UTF-16 (refused), else CSV that must be UTF-8; a text stream is CSV. Raises BadInput naming the problem
    and the fix when the file cannot be read.
    """
    if isinstance(source, io.TextIOBase):
        return _text_records(source)
    start = _peek(source)
    if start.startswith(_ZIP):
        return _xlsx_records(source)
    if start.startswith(_OLE):
        raise BadInput("The file is an old Excel workbook (.xls), which Rapport does not read.",
                       hint="Save it as .xlsx (Excel Workbook) or as “CSV UTF-8” and import that.")
    if start.startswith(_UTF16):
        raise BadInput("The file is UTF-16 text (Excel's “Unicode Text”); Rapport reads UTF-8.",
                       hint=_FIX.replace("latin1", "utf-16"))
    return _utf8_records(source)


def _text_records(file: IO[str]) -> Iterator[Record]:
    try:
        yield from _csv_records(file)
    except _NotUtf8 as bad:
        raise _not_utf8("", bad.line) from None


def _utf8_records(stream: IO[bytes]) -> Iterator[Record]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield from _csv_records(text)
    except _NotUtf8 as bad:
        raise _not_utf8(*_first_bad_byte(stream, bad.line)) from None
    finally:
        if not stream.closed:
            text.detach()  # the caller's stream stays open: it may read the file again (owners are read ahead)


def _first_bad_byte(stream: IO[bytes], near: int) -> tuple[str, int]:
    """The first byte that is not UTF-8 and its line, found again from the start (the decoder reads ahead in
    blocks, so where it failed is only near the line); `near` when the stream cannot be read again."""
    if not stream.seekable():
        return "", near
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    while block := stream.read(1 << 16):
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            # the decoder keeps up to 3 bytes of an unfinished character from the block before
            return exc.object[exc.start:exc.start + 1].hex().upper(), lines + exc.object[:exc.start].count(b"\n")
        lines += block.count(b"\n")
    return "", near


class _NotUtf8(Exception):
    def __init__(self, line: int):
        self.line = line


def _peek(stream: IO[bytes]) -> bytes:
    if hasattr(stream, "peek"):
        return stream.peek(8)[:8]
    position = stream.tell()
    start = stream.read(8)
    stream.seek(position)
    return start


def _not_utf8(byte: str, line: int) -> BadInput:
    where = f"byte 0x{byte} on line {line}" if byte else f"something near line {line}"
    return BadInput(
        f"The file is not UTF-8 text: {where} is not UTF-8 (the file is probably Latin-1 or Windows-1252, as "
        "Excel's “CSV (Comma delimited)” and older CRMs write it).",
        hint=_FIX,
    )


def _sample(file: IO[str]) -> tuple[str, Iterator[str]]:
    """The first lines (whole), and every line of the file from the start, reading it once."""
    try:
        head = file.read(SAMPLE_CHARS)
        head += file.readline()
    except UnicodeDecodeError:
        raise _NotUtf8(1) from None
    return head, itertools.chain(io.StringIO(head, newline=""), file)


def delimiter_of(sample: str) -> str:
    """The delimiter csv.Sniffer finds in the first lines among comma, semicolon and tab; comma when unsure."""
    header = next(iter(sample.splitlines()), "")
    try:
        found = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        found = ","
    if found not in header:  # the sniffer guesses on odd files; a header always holds its delimiter
        counts = {candidate: header.count(candidate) for candidate in DELIMITERS}
        found = max(counts, key=counts.get) if any(counts.values()) else ","
    return found


def _csv_records(file: IO[str]) -> Iterator[Record]:
    head, lines = _sample(file)
    reader = csv.reader(lines, delimiter=delimiter_of(head))
    last = 0
    try:
        for cells in reader:
            first, last = last + 1, reader.line_num
            yield first, last, cells
    except UnicodeDecodeError:
        raise _NotUtf8(last + 1) from None
    except csv.Error as exc:
        raise BadInput(f"Line {last + 1} cannot be read as CSV: {exc}.",
                       hint="Check for a quote that is opened and never closed.") from None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number or an id typed as a number: 4155550100, not 4155550100.0
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _xlsx_records(stream: IO[bytes]) -> Iterator[Record]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # read_only streams the sheet's XML row by row; data_only gives a formula's last computed value.
        book = load_workbook(rewindable(stream), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise BadInput(f"The file looks like a workbook but cannot be read as .xlsx ({exc}).",
                       hint="Open it in a spreadsheet and save it again as .xlsx or as “CSV UTF-8”.") from None
    try:
        sheet = book.worksheets[0]
        width = 0  # a sheet's row ends at its last filled cell: the rest of the header's width is empty
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell(value) for value in row]
            if not width and any(cell.strip() for cell in cells):
                width = len(cells)
            yield number, number, cells + [""] * (width - len(cells))
    finally:
        book.close()


def first_row(source: IO[bytes] | IO[str]) -> tuple[int, list[str]] | None:
    """The first row that is not blank (the header) with its line; the stream is read from where it is."""
    with closing(read_records(source)) as records:  # closed now, while the stream is still open
        found = next((record for record in records if any(cell.strip() for cell in record[2])), None)
    return None if found is None else (found[0], found[2])
