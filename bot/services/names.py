"""Names as people type them: folded for matching (case, width, accents), checked for what we can store."""

import re
import unicodedata

from bot.errors import BadInput

# PostgreSQL text cannot hold NUL; other control characters would break Slack's rendering.
_FORBIDDEN = {chr(c) for c in range(32) if chr(c) not in "\t\n\r"} | {"\x7f"}


def name_key(name: str) -> str:
    """The form names are compared in: NFKC (full-width → ASCII), accents folded from Latin and Greek
    letters (`muller` finds Müller), case-folded, white space collapsed. Marks on other scripts stay: they change
    the letter (が is not か). migrations/versions/0007 holds a copy, for keys stored before."""
    decomposed = unicodedata.normalize("NFKD", name)
    kept, base = [], ""
    for ch in decomposed:
        if unicodedata.combining(ch) and base and ord(base) < 0x0400:  # Latin, IPA and Greek letters
            continue
        kept.append(ch)
        if not unicodedata.combining(ch):
            base = ch
    return " ".join(unicodedata.normalize("NFKC", "".join(kept)).casefold().split())


def clean_text(value: str, *, what: str, limit: int, required: bool = True, single_line: bool = False) -> str:
    """Trimmed text, or BadInput saying what is wrong with it; nothing is silently changed or cut."""
    value = value.strip()
    if required and not value:
        raise BadInput(f"The {what} is empty.")
    refuse_control_characters(value, what=what, why="cannot be stored")
    if single_line and ("\n" in value or "\r" in value):
        raise BadInput(f"The {what} must be on one line.")
    if len(value) > limit:
        raise BadInput(f"The {what} is {len(value):,} characters long; the limit is {limit:,}.")
    return value


def clean_name(value: str, *, what: str, limit: int) -> str:
    """A name: one line with something visible in it (a name of only invisible characters, or one that starts
    new lines, would forge or hide lines on a card)."""
    value = clean_text(value, what=what, limit=limit, single_line=True)
    if not any(unicodedata.category(ch)[0] in "LNSP" for ch in value):
        raise BadInput(f"The {what} has no visible letter, digit or symbol.")
    return value


def _unstorable(ch: str) -> bool:
    # Lone surrogates (U+D800–DFFF) arrive through JSON escapes; no database encoding can hold them.
    return ch in _FORBIDDEN or "\ud800" <= ch <= "\udfff"


def refuse_control_characters(value: str, *, what: str, why: str = "cannot be read") -> None:
    """BadInput naming the control characters (or lone surrogates) in `value`, if any: PostgreSQL cannot even
    compare text holding NUL, and no driver can encode a lone surrogate."""
    bad = sorted({ch for ch in value if _unstorable(ch)})
    if bad:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in bad)
        raise BadInput(f"The {what} contains a control character ({shown}) that {why}; remove it.")


def without_control_characters(value: str) -> str:
    """For search as you type, where a stray control character should find nothing rather than fail."""
    return "".join(ch for ch in value if not _unstorable(ch))


# Slack ids, as every service accepts them (whole strings: use fullmatch).
USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{1,31}")
