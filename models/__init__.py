"""SQLModel tables, one module per aggregate; importing this package registers them all on SQLModel.metadata."""

from models import oauth  # noqa: F401  (registers slack_sdk's tables on our metadata)
from models.customer import Contact, Customer, EcosystemLink, Interaction, RelationshipChange
from models.health import DigestRun, HealthSnapshot
from models.plan import PlanPressure, PlanTarget
from models.reminder import Reminder
from models.survey import Survey, SurveyResponse
from models.workspace import ProcessedEvent, SlackUser, Workspace

__all__ = [
    "Contact",
    "Customer",
    "DigestRun",
    "EcosystemLink",
    "HealthSnapshot",
    "Interaction",
    "PlanPressure",
    "PlanTarget",
    "ProcessedEvent",
    "RelationshipChange",
    "Reminder",
    "SlackUser",
    "Survey",
    "SurveyResponse",
    "Workspace",
]
