"""Surveys: started with the fatigue rule, answered once per person (a second click changes the answer),
closed on time with a summary; a low score starts service recovery."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from bot.errors import BadInput, NotFound
from bot.services import reminders
from bot.services.names import clean_text
from bot.services.scores import survey_score
from bot.services.workspaces import not_paused
from bot.services.worktime import WorkingHours
from models import Customer, Survey, SurveyResponse, Workspace
from models.enums import SurveyKind, SurveyStatus

COMMENT_MAX = 2000
SCALES = {SurveyKind.nps: range(0, 11), SurveyKind.csat: range(1, 6)}
LOW = {SurveyKind.nps: 6, SurveyKind.csat: 2}  # at or below: service recovery
QUESTIONS = {
    SurveyKind.nps: "How likely are you to recommend us to a friend or colleague?",
    SurveyKind.csat: "How satisfied are you with our service?",
}


def is_low(kind: str, score: int) -> bool:
    return score <= LOW[SurveyKind(kind)]


def start_survey(session: Session, *, workspace: Workspace, customer: Customer, kind: str, channel_id: str,
                 by: str, now: datetime, force: bool = False) -> Survey:
    """A new open survey, unless the customer was surveyed within the cooldown (then `force` overrides)."""
    kind = SurveyKind(kind)
    if not force and workspace.survey_cooldown_days:
        last = session.exec(
            select(Survey.created_at).where(Survey.customer_id == customer.id)
            .order_by(Survey.created_at.desc()).limit(1)
        ).first()
        if last is not None and now - last < timedelta(days=workspace.survey_cooldown_days):
            allowed = last + timedelta(days=workspace.survey_cooldown_days)
            raise BadInput(
                f"{customer.name} was surveyed on {last:%Y-%m-%d}; to spare them survey fatigue the next one is "
                f"due from {allowed:%Y-%m-%d}.",
                hint=f'Add `force` to send it anyway: `/crm survey "{customer.name}" {kind.value} force`.',
            )
    survey = Survey(
        workspace_id=workspace.id, customer_id=customer.id, kind=kind.value, channel_id=channel_id,
        forced=force, created_by=by, created_at=now, closes_at=now + timedelta(days=workspace.survey_close_days),
    )
    session.add(survey)
    session.flush()
    return survey


def posted(session: Session, *, survey: Survey, ts: str) -> None:
    survey.message_ts = ts
    session.add(survey)


def get_survey(session: Session, *, workspace_id: str, survey_id: int) -> Survey:
    survey = session.get(Survey, survey_id)
    if survey is None or survey.workspace_id != workspace_id:
        raise NotFound("This survey no longer exists.")
    return survey


def latest_open(session: Session, *, customer: Customer) -> Survey:
    survey = session.exec(
        select(Survey).where(Survey.customer_id == customer.id, Survey.status == SurveyStatus.open)
        .order_by(Survey.created_at.desc()).limit(1)
    ).first()
    if survey is None:
        raise NotFound(f"{customer.name} has no open survey.")
    return survey


@dataclass
class Answer:
    counted: bool
    score: int
    previous: int | None = None
    became_low: bool = False  # this answer turned low (from nothing or from a higher score): recovery starts
    response_id: int | None = None


def answer(session: Session, *, survey: Survey, workspace: Workspace, respondent_id: str, respondent_team_id: str | None,
           is_guest: bool, score: int, now: datetime) -> Answer:
    """Record a click. Our own team is not counted unless the workspace allows it (trials)."""
    if survey.status != SurveyStatus.open or now >= survey.closes_at:
        raise BadInput("This survey is closed. Thank you all the same!")
    if score not in SCALES[SurveyKind(survey.kind)]:
        raise BadInput("That is not a score of this survey.")
    internal = (respondent_team_id in (None, workspace.id)) and not is_guest
    if internal and not workspace.survey_allow_internal:
        return Answer(counted=False, score=score)
    # Core statements on the session's connection: the ORM's bulk-insert and result machinery cost more than the
    # statements themselves, on a path taken once per click.
    connection = session.connection()
    previous = connection.execute(
        select(SurveyResponse.score).where(SurveyResponse.survey_id == survey.id,
                                           SurveyResponse.respondent_id == respondent_id)
    ).scalar()
    values = dict(workspace_id=survey.workspace_id, survey_id=survey.id, customer_id=survey.customer_id,
                  respondent_id=respondent_id, respondent_team_id=respondent_team_id, score=score,
                  answered_at=now, updated_at=now)
    # One row per person per survey even when two clicks race: the unique key decides, the later click wins.
    dialect = connection.dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(SurveyResponse).values(**values)
    # RETURNING (SQLite >= 3.35, PostgreSQL) saves a statement while SQLite's one write lock is held.
    response_id = connection.execute(insert.on_conflict_do_update(
        index_elements=["survey_id", "respondent_id"],
        set_={"score": score, "updated_at": now, "respondent_team_id": respondent_team_id},
    ).returning(SurveyResponse.id)).scalar_one()
    low_now = is_low(survey.kind, score)
    became_low = low_now and (previous is None or not is_low(survey.kind, previous))
    return Answer(counted=True, score=score, previous=previous, became_low=became_low, response_id=response_id)


def start_recovery(session: Session, *, workspace: Workspace, survey: Survey, customer: Customer, owner_hours: WorkingHours,
                   score: int, response_id: int, now: datetime):
    """A follow-up for the owner, due the next working day (service recovery)."""
    label = f"{survey.kind.upper()} {score}"
    return reminders.create_followup(
        session, workspace=workspace, owner_id=customer.owner_id, hours=owner_hours,
        due_at=owner_hours.next_working_day(now), note=f"Service recovery: {label} from a survey answer",
        by=customer.owner_id, now=now, customer=customer, source="survey", survey_response_id=response_id,
    )


def add_comment(session: Session, *, survey: Survey, respondent_id: str, comment: str, now: datetime) -> SurveyResponse:
    comment = clean_text(comment, what="comment", limit=COMMENT_MAX)
    response = session.exec(
        select(SurveyResponse).where(SurveyResponse.survey_id == survey.id,
                                     SurveyResponse.respondent_id == respondent_id)
    ).first()
    if response is None:
        raise BadInput("Pick a score first, then add your comment.")
    response.comment, response.updated_at = comment, now
    session.add(response)
    return response


def count(session: Session, *, survey_id: int) -> int:
    return session.exec(select(func.count()).select_from(SurveyResponse)
                        .where(SurveyResponse.survey_id == survey_id)).one()


def claim_redraw(session: Session, *, survey_id: int, now: datetime, every: timedelta) -> bool:
    """True for the one caller allowed to redraw the message now: at most once per `every`, all processes."""
    result = session.exec(
        update(Survey)
        .where(Survey.id == survey_id,
               (Survey.message_updated_at.is_(None)) | (Survey.message_updated_at <= now - every))
        .values(message_updated_at=now)
    )
    return bool(result.rowcount)


def redrawn(session: Session, *, survey_id: int, at: datetime) -> None:
    """The redraw claimed with claim_redraw reached Slack at `at`: the next one waits from then."""
    session.exec(update(Survey).where(Survey.id == survey_id, Survey.message_updated_at < at)
                 .values(message_updated_at=at))


def shown(session: Session, *, survey_id: int, shown_count: int) -> None:
    session.exec(update(Survey).where(Survey.id == survey_id).values(shown_count=shown_count))


def stale_counts(session: Session, *, limit: int = 100) -> list[int]:
    """Open surveys whose message shows an old count (a redraw was throttled and not done yet)."""
    counts = (select(SurveyResponse.survey_id, func.count().label("n"))
              .group_by(SurveyResponse.survey_id).subquery())
    return list(session.exec(
        select(Survey.id).join(counts, counts.c.survey_id == Survey.id)
        .where(Survey.status == SurveyStatus.open, Survey.message_ts.is_not(None), counts.c.n != Survey.shown_count,
               not_paused(Survey.workspace_id))
        .limit(limit)
    ).all())


def close(session: Session, *, survey: Survey, now: datetime) -> bool:
    """Close once: false when another process (or an earlier click) already did."""
    result = session.exec(
        update(Survey).where(Survey.id == survey.id, Survey.status == SurveyStatus.open)
        .values(status=SurveyStatus.closed, closed_at=now)
    )
    if result.rowcount:
        survey.status, survey.closed_at = SurveyStatus.closed, now
    return bool(result.rowcount)


def due_to_close(session: Session, *, now: datetime, limit: int = 100) -> list[Survey]:
    return list(session.exec(
        select(Survey).where(Survey.status == SurveyStatus.open, Survey.closes_at <= now,
                            not_paused(Survey.workspace_id)).limit(limit)
    ).all())


@dataclass
class Summary:
    survey: Survey
    customer: Customer
    score: float | None
    answers: int
    distribution: dict[int, int] = field(default_factory=dict)
    comments: list[tuple[int, str]] = field(default_factory=list)


def summarize(session: Session, *, survey: Survey) -> Summary:
    rows = session.exec(select(SurveyResponse.score, SurveyResponse.comment)
                        .where(SurveyResponse.survey_id == survey.id)).all()
    scores = [score for score, _ in rows]
    tally = Counter(scores)
    return Summary(
        survey=survey,
        customer=session.get(Customer, survey.customer_id),
        score=survey_score(survey.kind, scores),
        answers=len(scores),
        distribution={value: tally.get(value, 0) for value in SCALES[SurveyKind(survey.kind)]},
        comments=[(score, comment) for score, comment in rows if comment],
    )


def claim_summary(session: Session, *, survey_id: int, now: datetime) -> bool:
    """The owner's summary is sent once: whoever sets summary_sent_at first sends it."""
    result = session.exec(update(Survey).where(Survey.id == survey_id, Survey.summary_sent_at.is_(None))
                          .values(summary_sent_at=now))
    return bool(result.rowcount)


def unclaim_summary(session: Session, *, survey_id: int) -> None:
    session.exec(update(Survey).where(Survey.id == survey_id).values(summary_sent_at=None))


def summaries_owed(session: Session, *, limit: int = 100) -> list[Survey]:
    return list(session.exec(select(Survey).where(Survey.status == SurveyStatus.closed,
                                                  Survey.summary_sent_at.is_(None),
                                                  not_paused(Survey.workspace_id)).limit(limit)).all())
