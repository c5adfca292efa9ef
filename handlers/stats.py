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
    group="Customers",
)


def stats(command: Command) -> Reply:
    if len(command.args) > 1:
        raise BadInput("`/crm stats` takes one period.", hint=STATS.usage_hint())
    period = command.args[0].text.lower() if command.args else "month"
    with command.read() as (session, workspace):
        figures = period_stats(session, workspace=workspace, period=period, now=command.now)
    total = figures.total
    return Reply(text=f"Last {period}: {total.churned} of {total.at_start} customers churned, {total.won} won",
                 blocks=render("stats.j2", stats=figures))


def register(app, router: Router) -> None:
    router.add(STATS)
