"""Reading Slack payloads: a submitted modal's state.values flattened to {block_id: plain value}, its metadata, and the
workspace a request is for."""

import json


def read_state(view: dict) -> dict:
    values = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for element in actions.values():
            values[block_id] = _value(element)
    return values


def _value(element: dict):
    kind = element.get("type")
    if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
        return element.get("value")
    if kind in ("static_select", "external_select", "radio_buttons"):
        option = element.get("selected_option")
        return option.get("value") if option else None
    if kind in ("checkboxes", "multi_static_select", "multi_external_select"):
        return [option.get("value") for option in element.get("selected_options") or []]
    if kind == "users_select":
        return element.get("selected_user")
    if kind == "conversations_select":
        return element.get("selected_conversation")
    if kind == "channels_select":
        return element.get("selected_channel")
    if kind == "datepicker":
        return element.get("selected_date")
    if kind == "timepicker":
        return element.get("selected_time")
    return element.get("value")


def metadata(view: dict) -> dict:
    try:
        return json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}


def workspace_of(body: dict, context) -> str | None:
    """The installed workspace a request is for (org-wide installs send no team_id with some views)."""
    return (context.get("team_id") or (body.get("view") or {}).get("app_installed_team_id")
            or context.get("enterprise_id"))
