"""/crm add, show, list, log, contact, level, org, stage, tier, owner, history: customers and relationship state."""

import json

from bot.db import read_scope
from bot.errors import BadInput
from bot.services import chain
from bot.services import customers as svc
from bot.services import reminders as reminders_svc
from bot.services.card import LIST_SCOPES, list_accounts
from bot.services.vocabulary import human, level_label, parse_choice
from bot.services.workspaces import get_workspace
from bot.slack.client import post_to_each
from bot.slack.render import day, esc, render, user
from bot.slack.state import action_value, metadata, row_id, workspace_of
from bot.slack.text import rest_after
from handlers import forms
from handlers.args import channel_option, joined, split, user_option
from handlers.cards import card_reply
from handlers.crm import Command, Reply, Router, Subcommand
from models.enums import HistoryField, OrgRelationship, PartnerKind, RelationshipLevel, Stage, Tier, TouchKind


def _need(words, count: int, subcommand: Subcommand) -> None:
    if len(words) < count:
        raise BadInput("Something is missing.", hint=subcommand.usage_hint())


# -- add -------------------------------------------------------------------------------------------------

ADD = Subcommand(
    name="add",
    usage="/crm add <name> [tier:key|general|longtail] [stage:…] [org:…] [owner:@user] [channel:#chan]",
    summary="create a customer (no arguments: a form)",
    examples=['/crm add "Acme Corp" tier:key owner:@alice channel:#acme-shared', "/crm add Globex"],
    run=lambda command: add(command),
)


def add(command: Command) -> Reply | None:
    if not command.args:
        command.ack_now()
        forms.open_customer_form(command.runtime, command.client, trigger_id=command.trigger_id,
                                 workspace_id=command.workspace_id, user_id=command.user_id)
        return None
    args = split(command.args, options={"tier", "stage", "org", "owner", "channel"}, usage=ADD.usage_hint())
    if args.users or args.channels:
        raise BadInput("Give the owner as `owner:@name` and the channel as `channel:#name`.", hint=ADD.usage_hint())
    name = joined(args.words)
    if not name:
        raise BadInput("The customer needs a name.", hint=ADD.usage_hint())
    options = args.options
    owner_id = user_option(options["owner"]) if "owner" in options else None
    if owner_id and owner_id != command.user_id:  # the caller passed the members-only check already
        command.ensure_teammate(owner_id, role="owner")
    with command.work() as (session, workspace):
        customer = svc.create_customer(
            session,
            workspace=workspace,
            name=name,
            by=command.user_id,
            now=command.now,
            tier=parse_choice(Tier, options["tier"]) if "tier" in options else Tier.general,
            stage=parse_choice(Stage, options["stage"]) if "stage" in options else Stage.prospect,
            org_relationship=parse_choice(OrgRelationship, options["org"]) if "org" in options
            else OrgRelationship.vendor,
            owner_id=owner_id,
            channel_id=channel_option(options["channel"]) if "channel" in options else None,
        )
        return card_reply(session, workspace, customer, command.now, notice=f":white_check_mark: Added by {user(command.user_id)}.")


# -- show / list / history --------------------------------------------------------------------------------

SHOW = Subcommand(
    name="show",
    usage="/crm show <customer>",
    summary="the customer card: relationship, decision chain, touches, follow-ups, survey, health",
    examples=['/crm show "Acme Corp"', "/crm show acme"],
    run=lambda command: show(command),
    aliases=("card",),
)


def show(command: Command) -> Reply:
    if not command.args:
        raise BadInput("Which customer?", hint=SHOW.usage_hint())
    with command.read() as (session, workspace):
        customer = svc.find_customer(session, workspace_id=workspace.id, query=joined(command.args))
        return card_reply(session, workspace, customer, command.now)


LIST = Subcommand(
    name="list",
    usage="/crm list [mine|key|at-risk|attention|all] [owner:@name] [tier:key|general|longtail]",
    summary="accounts with their health, most urgent first (default: mine); at-risk: lowest score first",
    examples=["/crm list", "/crm list at-risk", "/crm list attention owner:@alice", "/crm list all tier:key"],
    run=lambda command: list_(command),
    aliases=("ls",),
)


def list_(command: Command) -> Reply:
    args = split(command.args, options={"owner", "tier"}, usage=LIST.usage_hint())
    scope = args.words[0].text.lower() if args.words else "mine"
    if scope not in LIST_SCOPES or len(args.words) > 1 or args.users or args.channels:
        raise BadInput(f"`/crm list` shows {', '.join(LIST_SCOPES)}.", hint=LIST.usage_hint())
    owner = user_option(args.options["owner"]) if "owner" in args.options else None
    tier = parse_choice(Tier, args.options["tier"]).value if "tier" in args.options else None
    return list_page(command.runtime, workspace_id=command.workspace_id, user_id=command.user_id, scope=scope,
                     owner=owner, tier=tier, offset=0)


def list_page(runtime, *, workspace_id: str, user_id: str, scope: str, owner: str | None, tier: str | None,
              offset: int) -> Reply:
    with read_scope(runtime.engine) as session:
        page = list_accounts(session, workspace=get_workspace(session, workspace_id), scope=scope,
                             user_id=user_id, now=runtime.clock.now(), offset=offset, owner_id=owner, tier=tier)
    more = json.dumps({"scope": scope, "owner": owner, "tier": tier, "offset": offset + len(page.lines)})
    blocks = render("customer_list.j2", page=page, scope=scope, owner=owner, tier=tier, more=more)
    return Reply(text=f"{page.total} customers ({scope})", blocks=blocks)


def next_page(ack, body, context, respond) -> None:
    """The list's More button: the next page, in place of the one shown."""
    ack()
    wanted = metadata({"private_metadata": action_value(body)})
    scope, offset = wanted.get("scope"), row_id(wanted.get("offset"))
    if scope not in LIST_SCOPES or offset is None:
        raise BadInput("That list is out of date; run `/crm list` again.")
    owner, tier = wanted.get("owner"), wanted.get("tier")
    reply = list_page(context["runtime"], workspace_id=workspace_of(body, context), user_id=body["user"]["id"],
                      scope=scope, owner=owner if isinstance(owner, str) else None,
                      tier=tier if tier in {t.value for t in Tier} else None, offset=offset)
    respond(**reply.payload(), replace_original=True)


HISTORY = Subcommand(
    name="history",
    usage="/crm history <customer>",
    summary="every change of tier, stage, levels, org relationship and owner",
    examples=['/crm history "Acme Corp"'],
    run=lambda command: history(command),
)


def history(command: Command) -> Reply:
    if not command.args:
        raise BadInput("Which customer?", hint=HISTORY.usage_hint())
    with command.read() as (session, workspace):
        customer = svc.find_customer(session, workspace_id=workspace.id, query=joined(command.args))
        changes = svc.history(session, customer=customer)
        names = svc.contact_names(session, {c.contact_id for c in changes if c.contact_id})
    blocks = render("history.j2", customer=customer, changes=changes, contact_names=names)
    return Reply(text=f"History of {customer.name}: {len(changes)} changes", blocks=blocks)


# -- log -------------------------------------------------------------------------------------------------

LOG = Subcommand(
    name="log",
    usage='/crm log <customer> <call|meeting|visit|email|message|note> [with:"<contact>"] <summary…>',
    summary="record a touchpoint; the next revisit moves",
    examples=['/crm log "Acme Corp" call Talked renewal with Li Wei, wants a proposal by Friday',
              '/crm log acme meeting with:"Li Wei" Walked through the proposal'],
    run=lambda command: log(command),
)


def log(command: Command) -> Reply:
    _need(command.args, 3, LOG)
    customer_word, kind_word = command.args[0], command.args[1]
    with_word = command.args[2].option() if len(command.args) > 3 else None
    with_whom = with_word[1] if with_word and with_word[0] == "with" else None
    summary = rest_after(command.text, command.args[2] if with_whom else kind_word)
    kind = parse_choice(TouchKind, kind_word.text)
    with command.work() as (session, workspace):
        customer = svc.find_customer(session, workspace_id=workspace.id, query=customer_word.text)
        person = svc.find_contact(session, customer=customer, query=with_whom) if with_whom else None
        svc.log_touch(session, workspace=workspace, customer=customer, kind=kind, summary=summary,
                      by=command.user_id, now=command.now, contact=person)
        notice = (f":white_check_mark: Logged a {kind.value} with *{esc(customer.name, 80)}*. "
                  f"Next revisit: {day(customer.revisit_due_at)}.")
        return card_reply(session, workspace, customer, command.now, notice=notice)


# -- decision chain and relationship state ----------------------------------------------------------------

CONTACT = Subcommand(
    name="contact",
    usage='/crm contact <customer> <name> [role:…] [level:1-5] [@user] [reports:"<name>"] '
          '[stance:supporter|neutral|blocker] [leans:"<competitor>"] [status:active|left|moved] [replaced_by:"<name>"]',
    summary="add or update a person in the decision chain and their place on its map",
    examples=['/crm contact "Acme Corp" "Li Wei" role:decision_maker level:4 @liwei',
              '/crm contact acme "Zhang San" reports:"Li Wei" stance:blocker leans:"Globex"',
              '/crm contact acme "Li Wei" status:left replaced_by:"Wang Fang"'],
    run=lambda command: contact(command),
)


MAP_OPTIONS = ("reports", "stance", "leans", "status", "replaced_by")


def contact(command: Command) -> Reply:
    args = split(command.args, options={"role", "level", "user", *MAP_OPTIONS}, usage=CONTACT.usage_hint())
    _need(args.words, 2, CONTACT)
    if len(args.users) > 1:
        raise BadInput("One Slack user per contact.", hint=CONTACT.usage_hint())
    slack_user = args.users[0] if args.users else (user_option(args.options["user"], what="user")
                                                  if "user" in args.options else None)
    actor = command.actor()
    with command.work() as (session, workspace):
        customer = svc.find_customer(session, workspace_id=workspace.id, query=args.words[0].text)
        person, created = svc.set_contact(
            session, workspace=workspace, customer=customer, name=joined(args.words[1:]), actor=actor,
            now=command.now, role=args.options.get("role"), level=args.options.get("level"),
            slack_user_id=slack_user,
        )
        placed = {name: args.options[name] for name in MAP_OPTIONS if name in args.options}
        if placed:
            chain.set_map(session, workspace=workspace, customer=customer, contact=person, actor=actor,
                          now=command.now, **placed)
        verb = "Added" if created else "Updated"
        notice = (f":white_check_mark: {verb} *{esc(person.name, 60)}*, {human(person.role)}, "
                  f"{level_label(person.level)}, at *{esc(customer.name, 80)}*.")
        return card_reply(session, workspace, customer, command.now, notice=notice)


LEVEL = Subcommand(
    name="level",
    usage="/crm level <customer> <contact> <1-5|contact|acceptance|favorable|supportive|exclusive> [reason…]",
    summary="move a person's key relationship level (kept in history)",
    examples=['/crm level "Acme Corp" "Li Wei" supportive after the workshop'],
    run=lambda command: level(command),
    group="Relationship",
)


def level(command: Command) -> Reply:
    _need(command.args, 3, LEVEL)
    customer_word, contact_word, level_word = command.args[:3]
    reason = rest_after(command.text, level_word) or None
    value = parse_choice(RelationshipLevel, level_word.text)
    actor = command.actor()
    with command.work() as (session, workspace):
        customer = svc.find_customer(session, workspace_id=workspace.id, query=customer_word.text)
        person, before = svc.change_level(session, workspace=workspace, customer=customer,
                                          contact_query=contact_word.text, level=str(int(value)), actor=actor,
                                          now=command.now, reason=reason)
        if before == int(value):
            notice = f"{esc(person.name, 60)} is already {level_label(before)}; nothing changed."
        else:
            arrow = ":arrow_up:" if int(value) > before else ":arrow_down:"
            notice = f"{arrow} *{esc(person.name, 60)}*: {level_label(before)} → {level_label(int(value))}."
        return card_reply(session, workspace, customer, command.now, notice=notice)


def _state_subcommand(name: str, field: HistoryField, enum, summary: str, example: str) -> Subcommand:
    usage = f"/crm {name} <customer> <{'|'.join(m.value for m in enum)}> [reason…]"

    def run(command: Command) -> Reply:
        _need(command.args, 2, subcommand)
        customer_word, value_word = command.args[:2]
        value = parse_choice(enum, value_word.text)
        reason = rest_after(command.text, value_word) or None
        actor = command.actor()
        with command.work() as (session, workspace):
            customer = svc.find_customer(session, workspace_id=workspace.id, query=customer_word.text)
            change = svc.change_state(session, workspace=workspace, customer=customer, field=field,
                                      value=value.value, actor=actor, now=command.now, reason=reason)
            label = {"org": "org relationship"}.get(name, name)
            if change is None:
                notice = f"{esc(customer.name, 80)} is already {human(value.value)}; nothing changed."
            else:
                notice = (f":white_check_mark: *{esc(customer.name, 80)}* {label}: "
                          f"{human(change.from_value or '—')} → {human(change.to_value)}.")
            return card_reply(session, workspace, customer, command.now, notice=notice)

    subcommand = Subcommand(name=name, usage=usage, summary=summary, examples=[example], run=run,
                            group="Relationship")
    return subcommand


TIER = _state_subcommand("tier", HistoryField.tier, Tier, "change the customer tier",
                         '/crm tier "Acme Corp" key renewal doubled')
STAGE = _state_subcommand("stage", HistoryField.stage, Stage, "change the lifecycle stage",
                          '/crm stage "Acme Corp" active contract signed')
ORG = _state_subcommand("org", HistoryField.org, OrgRelationship, "change the organizational relationship",
                        '/crm org "Acme Corp" key_supplier')

OWNER = Subcommand(
    name="owner",
    usage="/crm owner <customer> @user [keep-followups] [reason…]",
    summary="hand the account to someone else: its revisits and your open follow-ups on it go with it",
    examples=['/crm owner "Acme Corp" @bob taking over APAC', "/crm owner acme @bob keep-followups"],
    run=lambda command: owner(command),
    group="Relationship",
)


def owner(command: Command) -> Reply:
    _need(command.args, 2, OWNER)
    customer_word, user_word = command.args[:2]
    if not user_word.user_id:
        raise BadInput("Name the new owner as @someone.", hint=OWNER.usage_hint())
    rest = command.args[2:]
    keep = bool(rest) and not rest[0].quoted and rest[0].text.lower() == "keep-followups"
    reason = rest_after(command.text, rest[0] if keep else user_word) or None
    new = user_word.user_id
    command.ensure_teammate(new, role="owner")
    actor = command.actor()
    with command.work() as (session, workspace):
        customer = svc.find_customer(session, workspace_id=workspace.id, query=customer_word.text)
        previous = customer.owner_id
        change = svc.change_state(session, workspace=workspace, customer=customer, field=HistoryField.owner,
                                  value=new, actor=actor, now=command.now, reason=reason)
        if change is None:
            return card_reply(session, workspace, customer, command.now,
                              notice=f"{user(new)} already owns {esc(customer.name, 80)}.")
        moved = reminders_svc.hand_over(session, customer=customer, previous=previous, new=new,
                                        keep_followups=keep, now=command.now)
        name = esc(customer.name, 80)
        went = _plural(moved.followups, "open follow-up") + " and " + _plural(moved.revisits, "revisit")
        reply = card_reply(session, workspace, customer, command.now,
                           notice=f":white_check_mark: {name} now belongs to {user(new)}; {went} went with it."
                           + (f" {user(previous)} keeps {_plural(moved.kept, 'follow-up')} on it." if keep else ""))
        from_whom = f" from {user(previous)}" if previous else ""
        welcome = card_reply(session, workspace, customer, command.now, notice=(
            f":handshake: You now own *{name}*{from_whom}, handed over by {user(command.user_id)}; {went} "
            f"are yours now. Here is where the account stands:"))
    command.ack_now()  # the DMs talk to Slack
    post_to_each(command.client, [new], text=f"You now own {name}", blocks=welcome.blocks)
    if previous and previous != new:
        note = (f":arrow_right: *{name}* now belongs to {user(new)}. "
                + (f"You keep your {_plural(moved.kept, 'open follow-up')} on it." if keep
                   else f"Your open follow-ups on it ({moved.followups}) went to them."))
        post_to_each(command.client, [previous], text=f"{name} now belongs to {user(new)}",
                     blocks=render("notice.j2", text=note))
    return reply


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# -- ecosystem (客户生态圈) -----------------------------------------------------------------------------------

LINK = Subcommand(
    name="link",
    usage="/crm link <customer> <partner> [supplier|channel_partner|integrator|partner|competitor]",
    summary="put a company in a customer's ecosystem (its supplier, channel partner, integrator, our competitor)",
    examples=['/crm link "Acme Corp" "Globex" integrator', '/crm link acme initech supplier',
              '/crm link acme competitor "Initrode"'],
    run=lambda command: link(command),
    aliases=("partner",),
    group="Relationship",
)
UNLINK = Subcommand(
    name="unlink",
    usage="/crm unlink <customer> <partner>",
    summary="take a company out of a customer's ecosystem",
    examples=['/crm unlink "Acme Corp" "Globex"'],
    run=lambda command: unlink(command),
    group="Relationship",
)


def _two_names(command: Command, subcommand: Subcommand, *, at_most: int) -> None:
    _need(command.args, 2, subcommand)
    if len(command.args) > at_most:
        raise BadInput("Put names with spaces in quotes.", hint=subcommand.usage_hint())


def link(command: Command) -> Reply:
    _two_names(command, LINK, at_most=3)
    words = command.args
    if len(words) == 3 and not words[1].quoted and words[1].text.lower() == PartnerKind.competitor:
        words = [words[0], words[2], words[1]]  # `/crm link acme competitor Globex` reads like the sentence
    kind = words[2].text if len(words) > 2 else PartnerKind.partner.value
    actor = command.actor()
    with command.work() as (session, workspace):
        customer, partner = _pair(session, workspace, words)
        linked, created = svc.link_partner(session, workspace=workspace, customer=customer, partner=partner,
                                           kind=kind, actor=actor, now=command.now)
        notice = (f":link: *{esc(partner.name, 80)}* {'joined' if created else 'is now in'} the ecosystem of "
                  f"*{esc(customer.name, 80)}* as {human(linked.kind)}.")
        return card_reply(session, workspace, customer, command.now, notice=notice)


def unlink(command: Command) -> Reply:
    _two_names(command, UNLINK, at_most=2)
    actor = command.actor()
    with command.work() as (session, workspace):
        customer, partner = _pair(session, workspace, command.args)
        removed = svc.unlink_partner(session, workspace=workspace, customer=customer, partner=partner, actor=actor)
        notice = (f":white_check_mark: *{esc(partner.name, 80)}* left the ecosystem of *{esc(customer.name, 80)}*."
                  if removed else f"{esc(partner.name, 80)} was not in the ecosystem of {esc(customer.name, 80)}.")
        return card_reply(session, workspace, customer, command.now, notice=notice)


def _pair(session, workspace, words):
    """The customer and the partner the first two words name, in this workspace."""
    return (svc.find_customer(session, workspace_id=workspace.id, query=words[0].text),
            svc.find_customer(session, workspace_id=workspace.id, query=words[1].text))


def register(app, router: Router) -> None:
    for subcommand in (ADD, SHOW, LIST, LOG, CONTACT, HISTORY):
        router.add(subcommand)
    app.action("list.more")(next_page)
    for subcommand in (LEVEL, TIER, STAGE, ORG, OWNER, LINK, UNLINK):
        router.add(subcommand)

