"""/crm stats: churn and retention over a period, by tier, with the period's survey scores."""

from bot.errors import BadInput
from bot.services.stats import PERIODS, period_stats
from bot.slack.render import render
from handlers.crm import Command, Reply, Router, Subcommand

STATS = Subcommand(
    name="stats",
    usage=f"/crm stats [{'|'.join(PERIODS)}]",
    summary="churn and retention over the last week, month, quarter or year, by tier (default: month)",
    examples=["/crm stats", "/crm stats quarter"],
    run=lambda command: stats(command),
    group="Managers",
)


def stats(command: Command) -> Reply:
    period = command.args[0].text.lower() if command.args else "month"
    if len(command.args) > 1 or period not in PERIODS:
        raise BadInput(f"`/crm stats` covers a {', '.join(PERIODS)}.", hint=STATS.usage_hint())
    with command.read() as (session, workspace):
        figures = period_stats(session, workspace=workspace, period=period, now=command.now)
    total = figures.total
    rate = f"{total.churn_rate:.1f}% churn" if total.churn_rate is not None else "no accounts at the start"
    return Reply(text=f"Last {period}: {total.churned} of {total.at_start} accounts churned ({rate})",
                 blocks=render("stats.j2", stats=figures))


def register(app, router: Router) -> None:
    router.add(STATS)
