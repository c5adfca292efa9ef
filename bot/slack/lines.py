"""One-line mrkdwn renderings of domain rows, shared by the card, lists, Home and the digest."""

import re

from bot.services.scores import format_score
from bot.services.vocabulary import human, level_label
from bot.slack.render import day, esc, user

_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")


STANCE = {"supporter": ":large_green_circle: supporter", "neutral": ":white_circle: neutral",
          "blocker": ":red_circle: blocker"}
INDENT = "\u2003\u2003"  # em spaces: Slack keeps them at the start of a line


def chain_line(entry, names: dict, rivals: dict) -> str:
    """One person of the decision-chain map, indented under whom they report to."""
    depth, contact = entry
    prefix = INDENT * min(depth, 6) + ("└ " if depth else "• ")
    if contact.status != "active":
        successor = names.get(contact.replaced_by_id)
        after = f"; replaced by *{esc(successor, 40)}*" if successor else ""
        return f"{prefix}~{esc(contact.name, 40)}~ {human(contact.role)}, was {level_label(contact.level)} ({contact.status}{after})"
    line = f"{prefix}*{esc(contact.name, 40)}*, {human(contact.role)}, {level_label(contact.level)}"
    if contact.stance:
        line += f" · {STANCE.get(contact.stance, esc(contact.stance, 16))}"
    if contact.leans_to_id in rivals:
        line += f" · leans to *{esc(rivals[contact.leans_to_id], 40)}*"
    if contact.slack_user_id:
        line += f" · {user(contact.slack_user_id)}"
    return line


def coverage_line(person: str, coverage, names: dict) -> str:
    """One of our people and whom they touched at the customer in the window: "@alice — *Li Wei* 6 · …"."""
    cells = [f"*{esc(names[contact], 30)}* {n}" if contact in names else f"_no one named_ {n}"
             for contact, n in coverage.row(person)[:8]]
    return f"• {user(person)} — " + " · ".join(cells)


def link(url: str | None, label: str) -> str:
    return f" · <{url}|{label}>" if url and _SAFE_URL.match(url) else ""


def touch_line(touch, contact_names: dict) -> str:
    who = f" with {esc(contact_names[touch.contact_id], 40)}" if touch.contact_id in contact_names else ""
    summary = esc(" ".join(touch.summary.split()), 160)
    return f"• {day(touch.at)} · {touch.kind} by {user(touch.by_user)}{who} — {summary}{link(touch.link, 'message')}"


def partner_line(partner) -> str:
    """"*Globex* (integrator)" around the customer; "channel partner of *Initech*" the other way round."""
    name, kind = f"*{esc(partner.customer.name, 60)}*", human(partner.kind)
    return f"{name} ({kind})" if partner.around else f"{kind} of {name}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def total_row(counts) -> str:
    """The whole workspace's line of /crm stats."""
    return (f"*All customers* · {counts.at_start} at the start · {counts.churned} churned · churn "
            f"{_rate(counts.churn_rate)} · retention {_rate(counts.retention_rate)} · {counts.won} new")


def tier_row(item) -> str:
    """"• key · 40 at the start · 2 churned (5.0%) · 3 new" for /crm stats."""
    tier, counts = item
    return (f"• {human(tier)} · {counts.at_start} at the start · {counts.churned} churned "
            f"({_rate(counts.churn_rate)}) · {counts.won} new")


def score_cell(score) -> str:
    return format_score(score.kind, score.value, score.answers)


def followup_line(reminder) -> str:
    note = esc(" ".join(reminder.note.split()), 150) or "follow up"
    return f"• {day(reminder.due_at)} — {note} ({user(reminder.owner_id)})"


def change_line(change, contact_names: dict) -> str:
    if change.field == "owner":
        before = user(change.from_value) if change.from_value else "nobody"
        what = f"owner {before} → {user(change.to_value)}"
    elif change.field == "level":
        name = esc(contact_names.get(change.contact_id, "someone"), 40)
        to = level_label(int(change.to_value))
        what = f"{name} added at {to}" if change.from_value is None else f"{name} {change.from_value} → {to}"
    elif change.field == "target":
        aim = esc(contact_names.get(change.contact_id, "someone"), 40) if change.contact_id else "org relationship"
        what = f"target for {aim}: {_aim(change.to_value, change.contact_id)}"
        if change.from_value:
            what += f" (was {_aim(change.from_value, change.contact_id)})"
    elif change.field in ("reports", "stance", "leans", "status"):
        name = esc(contact_names.get(change.contact_id, "someone"), 40)
        verb = {"reports": "reports to", "stance": "stance", "leans": "leans to", "status": "status"}[change.field]
        before = f"{esc(change.from_value, 64)} → " if change.from_value else ""
        what = f"{name} {verb} {before}{esc(change.to_value, 64)}"
    elif change.field == "pressure":
        what = f"{change.to_value} pressure noted"
    elif change.field == "step":
        what = f"plan step added, due {change.to_value}"
    else:
        label = {"org": "org relationship"}.get(change.field, change.field)
        what = f"{label} {human(change.from_value or '—')} → {human(change.to_value)}"
    reason = f" ({esc(change.reason, 120)})" if change.reason else ""
    return f"{day(change.at)} {what} by {user(change.by_user)}{reason}"


def _aim(stored: str, contact_id) -> str:
    """A target as history keeps it (`key_supplier by 2027-Q1`, `4 by 2027-03-31`), in words."""
    value, _, by = stored.partition(" by ")
    shown = level_label(int(value)) if contact_id and value.isdigit() else human(value)
    return f"{shown} by {esc(by, 16)}"


def target_line(line) -> str:
    """"*Org relationship*: supplier → target key supplier by 2027-Q1 (2 steps to go)"."""
    target = line.target
    if line.contact is None:
        now, aim, who = human(line.current), human(target.value), "*Org relationship*"
    else:
        now, aim, who = level_label(int(line.current)), level_label(int(target.value)), f"*{esc(line.contact.name, 60)}*"
    state = ":white_check_mark: reached" if line.reached else f"{line.gap} step{'s' if line.gap != 1 else ''} to go"
    return f"• {who}: {now} → target {aim} by {esc(target.by_label, 16)} ({state})"


def pressure_line(kind: str, pressures: dict, titles: dict) -> str:
    found = pressures.get(kind)
    text = esc(" ".join(found.text.split()), 500) if found else "_not analysed yet_"
    return f"• *{titles[kind]}*: {text}"


def step_line(step) -> str:
    mark = {"done": ":white_check_mark:", "cancelled": ":x:"}.get(step.status, ":small_blue_diamond:")
    note = esc(" ".join(step.note.split()), 200)
    when = f"done {day(step.done_at)}" if step.done_at else f"due {day(step.due_at)}"
    return f"{mark} {note} · {when} · {user(step.owner_id)}"


def home_followup_line(row) -> str:
    reminder, customer_name = row
    note = esc(" ".join(reminder.note.split()), 120) or reminder.kind
    about = f"*{esc(customer_name, 60)}* — " if customer_name else ""
    return f"• {day(reminder.due_at)} · {about}{note}"


def home_survey_line(row) -> str:
    survey, customer_name, result = row
    state = "open" if survey.status == "open" else "closed"
    return f"• *{esc(customer_name, 60)}* · {result.label} · {day(survey.created_at)} ({state})"


def agenda_line(reminder, customer) -> str:
    name = f"*{esc(customer.name, 80)}*" if customer else "*Follow-up*"
    if reminder.kind == "revisit":
        since = day(customer.last_touch_at) if customer and customer.last_touch_at else "never"
        detail = f"{customer.tier if customer else ''} account · last touch {since}"
    else:
        detail = esc(" ".join(reminder.note.split()), 200) or "follow up"
    line = f"{name} — {detail}"
    if reminder.status == "done":
        return f"~{line}~ :white_check_mark:"
    if reminder.status == "cancelled":
        return f"~{line}~"
    if reminder.status == "pending" and reminder.delivered_at:
        return f"{line}\n_snoozed until {day(reminder.deliver_at)}_"
    return line


def distribution(tally: dict[int, int]) -> str:
    """A text bar chart of answers per score, for monospace display."""
    top = max(tally.values(), default=0) or 1
    return "\n".join(f"{score:>2} {'█' * round(12 * n / top):<12} {n}" for score, n in tally.items())


def comment_line(row) -> str:
    score, comment = row
    return f"• *{score}* — {esc(' '.join(comment.split()), 300)}"


BAND_ICONS = {"healthy": ":large_green_circle:", "watch": ":large_yellow_circle:", "at_risk": ":red_circle:",
              "insufficient": ":white_circle:"}
BAND_NAMES = {"healthy": "Healthy", "watch": "Watch", "at_risk": "At risk", "insufficient": "Insufficient data"}


def band_cell(item, changes: dict) -> str:
    """":red_circle: At risk *3* (+1)": a health band's count and its change since last week."""
    band, count = item
    change = changes.get(band)
    delta = f" ({change:+d})" if change else ""
    return f"{BAND_ICONS[band]} {BAND_NAMES[band]} *{count}*{delta}"


def health_cell(score, band: str | None) -> str:
    """":red_circle: 32 at risk" for a list line; "not scored yet" before the first weekly snapshot."""
    if band is None:
        return ":white_circle: not scored yet"
    if score is None:
        return f"{BAND_ICONS[band]} insufficient data"
    return f"{BAND_ICONS[band]} {score:.0f} {BAND_NAMES[band].lower()}"


def _score(value) -> str:
    return "—" if value is None else f"{value:.0f}"


def account_line(account, show_moves: bool) -> str:
    c = account.customer
    head = (f"*{esc(c.name, 80)}* · {_score(account.score)} {account.trend} `{account.sparkline}` · {user(c.owner_id)}")
    if show_moves and account.previous is not None:
        head += f"\n{_score(account.previous)} → {_score(account.score)}"
    details = account.moved[:3] if show_moves and account.moved else account.reasons[:3]
    return head + "\n" + esc(" · ".join(details), 600)


def roster_line(account) -> str:
    c = account.customer
    reasons = esc("; ".join(account.moved[:1] or account.reasons[:1]), 200)
    return f"*{esc(c.name, 80)}* · {_score(account.score)} {account.trend} `{account.sparkline}` · {user(c.owner_id)}\n{reasons}"


def overdue_line(row) -> str:
    owner, accounts = row
    total = sum(n for _, n in accounts)
    names = ", ".join(f"{esc(c.name, 40)} ({n})" for c, n in accounts[:8])
    more = f" and {len(accounts) - 8} more" if len(accounts) > 8 else ""
    return f"• {user(owner)} *{total}* — {names}{more}"


def survey_digest_line(line) -> str:
    text = f"• *{esc(line.customer.name, 80)}* {format_score(line.kind, line.score, line.answers)}"
    for score, comment in line.comments[:3]:
        text += f"\n      > {score}: {esc(' '.join(comment.split()), 200)}"
    return text


def move_line(move) -> str:
    arrow = ":arrow_up:" if move.up else ":arrow_down:"
    if move.field == "level":
        what = f"{esc(move.contact or 'someone', 40)} {level_label(int(move.before))} → {level_label(int(move.after))}"
    else:
        label = {"org": "org relationship"}.get(move.field, move.field)
        what = f"{label} {human(move.before or '—')} → {human(move.after)}"
    return f"{arrow} *{esc(move.customer.name, 80)}*: {what} (by {user(move.by)})"


def no_survey_line(customers, shown: int = 60, size: int = 2900) -> str:
    """Key accounts without a survey for 90 days."""
    return names_line("*No survey for 90 days*", customers, shown=shown, size=size)


def churned_line(customers) -> str:
    """Key accounts that churned this week: named once, out of the health bands."""
    return names_line("*Churned this week*", customers)


def no_owner_line(customers) -> str:
    """Key accounts nobody owns: nobody is reminded to revisit them."""
    return names_line("*No owner* — nobody is reminded to revisit these; `/crm owner <customer> @someone`",
                      customers)


def names_line(title: str, customers, shown: int = 60, size: int = 2900) -> str:
    """`title (count): names…`: as many names as fit one section, the rest counted (a cut in the middle of the
    list would hide how many were left out)."""
    text = f"{title} ({len(customers)}): "
    names, length = [], len(text) + len(" and 1000 more")
    for customer in customers[:shown]:
        name = esc(customer.name, 60)
        length += len(name) + len(", ")
        if length > size:
            break
        names.append(name)
    more = len(customers) - len(names)
    return text + ", ".join(names) + (f" and {more} more" if more else "")


def config_row(row: tuple[str, str]) -> str:
    name, value = row
    return f"*{name}*: {value}"


FILTERS = {
    "config_row": config_row,
    "band_cell": band_cell,
    "health_cell": health_cell,
    "account_line": account_line,
    "roster_line": roster_line,
    "overdue_line": overdue_line,
    "survey_digest_line": survey_digest_line,
    "move_line": move_line,
    "no_survey_line": no_survey_line,
    "no_owner_line": no_owner_line,
    "churned_line": churned_line,
    "distribution": distribution,
    "comment_line": comment_line,
    "agenda_line": agenda_line,
    "home_followup_line": home_followup_line,
    "home_survey_line": home_survey_line,
    "partner_line": partner_line,
    "tier_row": tier_row,
    "total_row": total_row,
    "score_cell": score_cell,
    "touch_line": touch_line,
    "followup_line": followup_line,
    "change_line": change_line,
    "target_line": target_line,
    "step_line": step_line,
    "pressure_line": pressure_line,
    "chain_line": chain_line,
    "coverage_line": coverage_line,
}
