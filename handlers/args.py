"""Reading a subcommand's words: names (quoted or not), `key:value` options, @people and #channels."""

from dataclasses import dataclass, field

from bot.errors import BadInput
from bot.slack.text import Token, channel_id_in, user_id_in


@dataclass
class Args:
    words: list[Token] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)


def split(tokens: list[Token], *, options: set[str] = frozenset(), usage: str = "") -> Args:
    """Words, known options, mentions. An unknown `x:y` stays a word (names may hold colons)."""
    result = Args()
    for token in tokens:
        parsed = token.option()
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
