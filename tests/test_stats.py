"""/crm stats: churn and retention per period, read from the stage history, as a manager would check them."""

from datetime import timedelta

from bot.services.stats import period_stats
from bot.services.workspaces import get_workspace
from tests.support import text_of


def test_churn_and_retention_over_the_last_month_count_the_customers_we_had_at_its_start(slack, clock):
    for name, tier, stage in (("Acme", "key", "active"), ("Globex", "key", "active"), ("Initech", "general", "expanding"),
                              ("Umbrella", "general", "active"), ("Hooli", "longtail", "active"),
                              ("Pending", "general", "prospect")):
        slack.command("alice", f'add "{name}" tier:{tier} stage:{stage}')
    slack.command("alice", "stage hooli churned")  # lost before the period: not a customer at its start
    clock.advance(timedelta(days=25))  # inside the last 30 days seen from day 40
    slack.command("alice", "stage globex churned lost to a competitor")  # churn
    slack.command("alice", "stage hooli active won back")  # won
    slack.command("alice", "stage initech churned")
    slack.command("alice", "stage initech expanding a false alarm")  # lost and back within the period: kept
    slack.command("alice", "stage pending churned")  # a lost deal, not a lost customer
    slack.command("alice", 'add "Zeta" tier:key stage:active')  # won
    slack.command("alice", 'add "Lead" tier:key')  # a prospect: not won yet
    clock.advance(timedelta(days=15))

    shown = text_of(slack.command("mei", "stats"))
    assert "Churn and retention, last month" in shown
    assert "*All customers* · 4 at the start · 1 churned · churn 25.0% · retention 75.0% · 2 new" in shown
    assert "• key · 2 at the start · 1 churned (50.0%) · 1 new" in shown
    assert "• general · 2 at the start · 0 churned (0.0%) · 0 new" in shown
    assert "• longtail · 0 at the start · 0 churned (—) · 1 new" in shown
    assert "*Churned* · Globex" in shown and "Initech" not in shown.split("*Churned*")[1]
    assert "no answers in this period" in shown

    year = text_of(slack.command("alice", "stats year"))  # everyone reads; all were created within the year
    assert "*All customers* · 0 at the start · 0 churned · churn — · retention — · 5 new" in year


def test_a_stage_change_committed_after_the_moment_asked_about_is_left_out(slack, clock):
    slack.command("alice", 'add "Acme" tier:key stage:active')
    clock.advance(timedelta(days=40))
    asked = clock.now()
    clock.advance(timedelta(seconds=1))  # another request commits a change just after: not this answer's
    slack.command("alice", "stage acme churned")
    with slack.session() as session:
        figures = period_stats(session, workspace=get_workspace(session, "T0RAPPORT"), period="month", now=asked)
    assert (figures.total.at_start, figures.total.churned) == (1, 0)


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
    refused = slack.command("alice", "stats decade")
    assert "week, month, quarter, year" in refused["text"] and refused["response_type"] == "ephemeral"
