"""Reading a subcommand's words: names (quoted or not), `key:value` options, @people and #channels."""

import re
from dataclasses import dataclass, field

from rapidfuzz import process

from bot.errors import BadInput
from bot.slack.text import Token, channel_id_in, user_id_in


@dataclass
class Args:
    words: list[Token] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)


_OPTION_WORD = re.compile(r"[a-z][a-z_-]{0,30}")


def split(tokens: list[Token], *, options: set[str] = frozenset(), usage: str = "") -> Args:
    """Words, known options, mentions. An unquoted `word:value` that is not one of `options` is refused rather
    than read as part of a name (a name holding a colon is written in quotes)."""
    result = Args()
    for token in tokens:
        parsed = token.option()
        if parsed and parsed[0] not in options and parsed[1] and _OPTION_WORD.fullmatch(parsed[0]):
            raise unknown_option(token.text, parsed[0], options, usage)
        if parsed and parsed[0] in options:
            name, value = parsed
            if not value:
                raise BadInput(f"`{name}:` needs a value, like `{name}:…` with no space.", hint=usage or None)
            if name in result.options:
                raise BadInput(f"`{name}:` is given twice.", hint=usage or None)
            result.options[name] = value
        elif token.user_id:
            result.users.append(token.user_id)
        elif token.channel_id:
            result.channels.append(token.channel_id)
        else:
            result.words.append(token)
    return result


def unknown_option(word: str, name: str, options: set[str], usage: str) -> BadInput:
    known = ", ".join(f"`{o}:`" for o in sorted(options)) or "no options"
    guess = process.extractOne(name, sorted(options), score_cutoff=60) if options else None
    maybe = f" Did you mean `{guess[0]}:`?" if guess else ""
    return BadInput(f"`{name}:` is not an option here; this takes {known}.{maybe} A name with a colon in it "
                    f"goes in quotes: `\"… {word}\"`.", hint=usage or None)


def joined(tokens: list[Token]) -> str:
    return " ".join(token.text for token in tokens)


def user_option(value: str, *, what: str = "owner") -> str:
    user = user_id_in(value)
    if not user:
        raise BadInput(f"`{what}:` takes a person as @name, like `{what}:@alice`.")
    return user


def channel_option(value: str) -> str:
    channel = channel_id_in(value)
    if not channel:
        raise BadInput("`channel:` takes a channel as #name, like `channel:#acme-shared`.")
    return channel
