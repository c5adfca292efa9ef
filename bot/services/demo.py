"""Demo data for trying Rapport: a small, believable portfolio with history, surveys and follow-ups."""

import random
from datetime import datetime, timedelta

from sqlmodel import Session, select

from bot.services import customers as svc
from bot.services import health
from bot.services.customers import Actor
from models import Customer, HealthSnapshot, Reminder, Survey, SurveyResponse, Workspace

ACCOUNTS = [
    # name, tier, stage, org relationship, days since last touch, contacts (name, role, level)
    ("Acme Corp", "key", "active", "key_supplier", 3, [("Li Wei", "decision_maker", 4), ("Ann Lee", "user", 3)]),
    ("北京星河科技", "key", "expanding", "strategic_partner", 9,
     [("王芳", "decision_maker", 5), ("张伟", "champion", 4)]),
    ("Globex", "key", "active", "supplier", 33, [("Hank Scorpio", "decision_maker", 2), ("Mindy", "evaluator", 3)]),
    ("Initech", "key", "converting", "vendor", 50, [("Bill Lumbergh", "decision_maker", 1)]),
    ("Umbrella Health", "key", "active", "key_supplier", 12, [("Alice Abernathy", "champion", 4)]),
    ("Société Générale Digital", "general", "active", "supplier", 20, [("Claire Dubois", "influencer", 3)]),
    ("Stark Logistics", "general", "prospect", "vendor", 60, []),
    ("Wayne Foods", "general", "converting", "vendor", 5, [("Lucius Fox", "evaluator", 2)]),
    ("Tyrell Robotics", "longtail", "active", "vendor", 95, []),
    ("Hooli", "longtail", "churned", "vendor", 200, []),
]


def seed_demo(session: Session, *, workspace: Workspace, owners: list[str], customer_person: str, now: datetime,
              seed: int = 7) -> int:
    """Create the demo portfolio unless it exists; returns the number of customers created."""
    if session.exec(select(Customer.id).where(Customer.workspace_id == workspace.id).limit(1)).first():
        return 0
    rng = random.Random(seed)
    created = 0
    for index, (name, tier, stage, org, touched_days_ago, contacts) in enumerate(ACCOUNTS):
        owner = owners[index % len(owners)]
        actor = Actor(user_id=owner)
        start = now - timedelta(days=200)
        customer = svc.create_customer(session, workspace=workspace, name=name, by=owner, now=start, tier=tier,
                                       stage=stage, org_relationship=org, owner_id=owner)
        for contact_name, role, level in contacts:
            svc.set_contact(session, workspace=workspace, customer=customer, name=contact_name, actor=actor,
                            now=start, role=role, level=max(1, level - 1))
            if level > 1:
                svc.set_contact(session, workspace=workspace, customer=customer, name=contact_name, actor=actor,
                                now=now - timedelta(days=rng.randint(1, 20)), level=level,
                                reason="after the quarterly review")
        for days in sorted({touched_days_ago + rng.randint(0, 40) for _ in range(4)} | {touched_days_ago},
                           reverse=True):
            svc.log_touch(session, workspace=workspace, customer=customer,
                          kind=rng.choice(["call", "meeting", "visit", "email"]),
                          summary=rng.choice(["Quarterly review", "Renewal terms discussed", "Demo of the new module",
                                              "Escalation about delivery times", "Lunch with the team"]),
                          by=owner, now=now - timedelta(days=days), at=now - timedelta(days=days))
        if tier == "key":
            survey = Survey(workspace_id=workspace.id, customer_id=customer.id, kind="nps",
                            channel_id="C0ACME", status="closed", created_by=owner,
                            created_at=now - timedelta(days=40), closes_at=now - timedelta(days=33),
                            closed_at=now - timedelta(days=33), message_ts=None, summary_sent_at=now)
            session.add(survey)
            session.flush()
            for n in range(rng.randint(2, 5)):
                score = rng.choice([3, 6, 8, 9, 9, 10]) if name != "Initech" else rng.choice([2, 4, 5])
                session.add(SurveyResponse(workspace_id=workspace.id, survey_id=survey.id, customer_id=customer.id,
                                           respondent_id=f"{customer_person}{n}" if n else customer_person,
                                           respondent_team_id="T0CUSTOMER", score=score,
                                           comment="Support is slow to answer" if score <= 6 else None,
                                           answered_at=now - timedelta(days=38), updated_at=now - timedelta(days=38)))
        if name in ("Globex", "Initech"):
            due = now - timedelta(days=4)
            session.add(Reminder(workspace_id=workspace.id, customer_id=customer.id, owner_id=owner,
                                 note="Send the revised proposal", due_at=due, deliver_at=due, next_attempt_at=due,
                                 status="delivered", delivered_at=due, created_by=owner, created_at=due))
        created += 1
    session.flush()
    # Past weekly snapshots so trends and "what moved" have history from day one.
    scored = health.score_workspace(session, workspace=workspace, now=now)
    this_week = health.week_start(now, workspace.timezone)
    for item in scored:
        if item.health.score is None:
            continue
        sliding = item.customer.name in ("Globex", "Initech")  # these two lose ground week by week
        for weeks_back in range(1, 8):
            score = max(0.0, min(100.0, item.health.score + rng.uniform(-4, 4) + (weeks_back * 6 if sliding else 0)))
            components = item.health.snapshot_components()
            if sliding:
                components["engagement"] = {"value": 100.0, "reason": "last touch 6 days ago"}
            session.add(HealthSnapshot(
                workspace_id=workspace.id, customer_id=item.customer.id,
                week_start=this_week - timedelta(weeks=weeks_back), score=score, band=health.band(score),
                components=components, reasons=item.health.reasons, computed_at=now))
    return created
