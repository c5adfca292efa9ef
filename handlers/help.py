"""`/crm help`: usage with examples, listing only the subcommands that are registered."""

from bot.slack.render import render
from handlers.crm import Command, Reply, Router, Subcommand


def _lines(subcommand: Subcommand, *, detailed: bool) -> list[str]:
    lines = [f"`{subcommand.usage}` — {subcommand.summary}"]
    examples = subcommand.examples if detailed else subcommand.examples[:1]
    if examples:
        lines.append("      e.g. " + ", ".join(f"`{example}`" for example in examples))
    return lines


def register(app, router: Router) -> None:
    def show_help(command: Command) -> Reply:
        topic = router.find(command.args[0].text) if command.args else None
        if command.args and topic is None:
            raise router.unknown(command.args[0].text)
        chosen = [topic] if topic else router.subcommands
        groups: dict[str, list[str]] = {}
        for subcommand in chosen:
            groups.setdefault(subcommand.group, []).extend(_lines(subcommand, detailed=topic is not None))
        blocks = render("help.j2", groups=[{"title": title, "lines": lines} for title, lines in groups.items()])
        return Reply(text="Rapport: how to use /crm", blocks=blocks)

    router.add(
        Subcommand(
            name="help",
            usage="/crm help [subcommand]",
            summary="this help",
            examples=["/crm help", "/crm help add"],
            run=show_help,
            aliases=("?",),
            group="Help",
        )
    )
