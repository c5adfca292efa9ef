"""Reading Slack payloads: a submitted modal's state.values flattened to {block_id: plain value}, its metadata, button
values and the ids in them (which anyone can forge), the workspace a request is for, and whether a body is shaped
as Slack sends them at all."""

import json

MAX_ROW_ID = 2**31 - 1  # ids are 32-bit integers; PostgreSQL refuses to even compare a larger number
_OBJECTS = ("user", "team", "channel", "view", "container", "message", "enterprise", "event", "state")
_STRINGS = ("type", "command", "text", "user_id", "team_id", "channel_id", "trigger_id", "response_url", "value",
            "callback_id", "event_id")


def malformed(body: dict) -> str | None:
    """Why `body` is not shaped as Slack sends it (so no listener should see it), or None."""
    for key in _OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            return f"`{key}` is not an object"
    for key in _STRINGS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"`{key}` is not a string"
    if "actions" in body:
        actions = body["actions"]
        if not isinstance(actions, list) or not actions or not all(isinstance(a, dict) for a in actions):
            return "`actions` is not a list of actions"
    return None


def action_value(body: dict) -> str:
    """The value of the button pressed or the option picked ("" when the payload carries none)."""
    action = (body.get("actions") or [{}])[0]
    option = action.get("selected_option")
    value = option.get("value") if isinstance(option, dict) else action.get("value")
    return value if isinstance(value, str) else ""


def row_id(value) -> int | None:
    """An id from a button value or private metadata, which anyone can forge: a database integer, or None."""
    text = str(value if value is not None else "")
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_ROW_ID:
        return None
    return int(text)


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
        meta = json.loads(view.get("private_metadata") or "{}")
    except (json.JSONDecodeError, TypeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def workspace_of(body: dict, context) -> str | None:
    """The installed workspace a request is for (org-wide installs send no team_id with some views)."""
    return (context.get("team_id") or (body.get("view") or {}).get("app_installed_team_id")
            or context.get("enterprise_id"))
