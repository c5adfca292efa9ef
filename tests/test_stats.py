"""/crm stats: churn and retention per period, read from the stage history, as a manager would check them."""

from datetime import timedelta

from bot.services.stats import period_stats
from bot.services.workspaces import get_workspace
from tests.support import text_of


def test_churn_and_retention_over_the_last_month_count_only_the_accounts_we_had_at_its_start(slack, clock):
    for name, tier in (("Acme", "key"), ("Globex", "key"), ("Initech", "general"), ("Umbrella", "general"),
                       ("Hooli", "longtail")):
        slack.command("alice", f'add "{name}" tier:{tier}')
    slack.command("alice", "stage hooli churned")  # gone before the period: not one of ours at its start
    clock.advance(timedelta(days=25))  # inside the last 30 days seen from day 40
    slack.command("alice", "stage globex churned lost to a competitor")
    slack.command("alice", "stage hooli active won back")
    slack.command("alice", "stage initech churned")
    slack.command("alice", "stage initech active a false alarm")  # churned in the period all the same
    slack.command("alice", 'add "Zeta" tier:key')  # won in the period
    clock.advance(timedelta(days=15))

    shown = text_of(slack.command("mei", "stats"))
    assert "Churn and retention, last month" in shown
    assert "*All accounts* · 4 at the start · 2 churned · churn 50.0% · retention 50.0% · 1 new" in shown
    assert "• key · 2 at the start · 1 churned (50.0%) · 1 new" in shown
    assert "• general · 2 at the start · 1 churned (50.0%) · 0 new" in shown
    assert "• longtail · 0 at the start · 0 churned (—) · 0 new" in shown
    assert "*Churned* · Globex, Initech" in shown
    assert "no answers in this period" in shown

    year = text_of(slack.command("alice", "stats year"))  # everyone reads
    assert "*All accounts* · 0 at the start · 0 churned · churn — · retention — · 6 new" in year


def test_stats_cost_the_same_queries_for_many_changes_as_for_few(slack, clock):
    from tests.support import counting_queries

    slack.command("alice", 'add "Acme" tier:key')
    clock.advance(timedelta(days=40))

    def queries() -> int:
        with slack.session() as session, counting_queries(slack.runtime.engine) as statements:
            period_stats(session, workspace=get_workspace(session, "T0RAPPORT"), period="month", now=clock.now())
        return len(statements)

    few = queries()
    for n in range(30):
        slack.command("alice", f'add "Account {n}"')
    clock.advance(timedelta(days=1))
    for n in range(30):
        slack.command("alice", f'stage "Account {n}" churned')
        slack.command("alice", f'stage "Account {n}" active')
    assert queries() == few + 1  # the accounts whose stage changed are read once, together


def test_stats_refuse_a_period_they_do_not_know(slack):
    for text in ("stats decade", "stats month extra"):
        refused = slack.command("alice", text)
        assert "week, month, quarter, year" in refused["text"] and refused["response_type"] == "ephemeral"
