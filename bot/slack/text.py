"""Slash-command text in (Slack's escaping undone, quoted words kept together) and mrkdwn out (escaped)."""

import re
from dataclasses import dataclass, field

_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")
_QUOTES = {'"': '"', "“": "”", "„": "“", "「": "」", "'": "'", "‘": "’"}


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters; after this `<!channel>` or `<@U1>` is shown, never acted on."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_slack(text: str) -> str:
    """Undo the &amp; &lt; &gt; that Slack applies to command text (should_escape: true)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@dataclass(frozen=True)
class Token:
    """One word of a command. `quoted` words are names and never mentions or options."""

    text: str
    quoted: bool = False
    end: int = field(default=0, compare=False)  # offset just past this word in the raw text

    @property
    def user_id(self) -> str | None:
        return None if self.quoted else user_id_in(self.text)

    @property
    def channel_id(self) -> str | None:
        return None if self.quoted else channel_id_in(self.text)

    def option(self) -> tuple[str, str] | None:
        """`tier:key` → ("tier", "key"); None for a quoted word or one without a colon."""
        if self.quoted or ":" not in self.text or self.text.startswith("<"):
            return None
        name, _, value = self.text.partition(":")
        if len(value) >= 2 and _QUOTES.get(value[0]) == value[-1]:
            value = value[1:-1]  # `reports:"Zhang San"`
        return name.lower(), value


def user_id_in(text: str) -> str | None:
    match = _USER.match(text)
    return match.group(1) if match else None


def channel_id_in(text: str) -> str | None:
    match = _CHANNEL.match(text)
    return match.group(1) if match else None


class UnclosedQuote(ValueError):
    pass


def tokenize(text: str) -> list[Token]:
    """Split on white space, keeping "quoted words" (straight, curly or CJK quotes) together.

    Mentions keep their `<@U…|name>` form (the display part can hold spaces), entities are unescaped last so
    that an escaped `&lt;!channel&gt;` typed by a user stays text and never becomes a mention.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _QUOTES:
            close = _QUOTES[ch]
            end = text.find(close, i + 1)
            if end < 0:
                raise UnclosedQuote(f"a quote ({ch}) is not closed")
            tokens.append(Token(unescape_slack(text[i + 1 : end]), quoted=True, end=end + 1))
            i = end + 1
            continue
        if ch == "<":
            end = text.find(">", i)
            if end > 0:
                j = end + 1
                while j < n and not text[j].isspace():
                    j += 1
                tokens.append(Token(text[i:j], end=j))
                i = j
                continue
        j = i
        while j < n and not text[j].isspace():
            if text[j] in _QUOTES and j > i and text[j - 1] == ":":  # `reports:"Zhang San"`: a quoted value
                close = text.find(_QUOTES[text[j]], j + 1)
                if close > 0:  # unclosed: an ordinary character, as before
                    j = close + 1
                    continue
            if text[j] == "<":  # `owner:<@U1|Ann Lee>`: a mention inside a word may hold spaces
                close = text.find(">", j)
                if close > 0:
                    j = close + 1
                    continue
            j += 1
        word = text[i:j]
        tokens.append(Token(word if "<" in word else unescape_slack(word), end=j))
        i = j
    return tokens


def rest_after(text: str, token: Token | None) -> str:
    """The free text (a note, a summary) after a word, as typed: line breaks and spacing kept."""
    start = token.end if token else 0
    return unescape_slack(text[start:]).strip()
