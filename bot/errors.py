"""Domain errors whose messages a user can read; the global error handler turns them into ephemeral replies."""

from bot.slack.text import escape_mrkdwn


class RapportError(Exception):
    """Base of every error a user may see. `message` is said as is, `hint` (usage, example) follows it."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def user_text(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message

    def mrkdwn(self) -> str:
        """Safe to post: everything escaped, since messages quote what users typed."""
        return escape_mrkdwn(self.user_text())


class BadInput(RapportError):
    """The command or form was not understood; nothing was written. `field`: the modal input to blame."""

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None):
        super().__init__(message, hint=hint)
        self.field = field


class NotFound(RapportError):
    """A named thing does not exist in this workspace; `suggestions` are the closest names."""

    def __init__(self, message: str, *, suggestions: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.suggestions = suggestions or []


class Ambiguous(NotFound):
    """A name matched several things."""


class PermissionDenied(RapportError):
    """The caller may read but not change this. `allowed` are the user ids who can, shown as mentions."""

    def __init__(self, message: str, *, allowed: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.allowed = allowed or []

    def mrkdwn(self) -> str:
        text = super().mrkdwn()
        if self.allowed:
            text += "\nWho can: " + ", ".join(f"<@{user}>" for user in self.allowed) + " and workspace admins."
        return text


class NotOurTeam(PermissionDenied):
    """Someone outside our own team (a guest, another organisation, a bot, a deactivated account) was named for
    a role that is for our team only, or tried to use Rapport. The words are rendered from a template
    (templates/not_teammate.j2): `mrkdwn` for messages, `plain` for a form's error under `field`."""

    def __init__(self, *, mrkdwn: str, plain: str, field: str | None = None):
        super().__init__(plain)
        self._mrkdwn = mrkdwn
        self.field = field

    def mrkdwn(self) -> str:
        return self._mrkdwn


class ChannelRefused(BadInput):
    """A channel cannot take what it was chosen for: internal content in a channel shared with another
    organisation, a survey in a channel with no customers in it. Words from templates/channel_refused.j2."""

    def __init__(self, *, mrkdwn: str, plain: str, field: str | None = None):
        super().__init__(plain, field=field)
        self._mrkdwn = mrkdwn

    def mrkdwn(self) -> str:
        return self._mrkdwn


class LookupFailed(RapportError):
    """Slack could not be asked (an error other than "no such thing", after the client's own retries)."""
