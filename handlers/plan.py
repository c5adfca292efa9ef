"""/crm plan and the Plan button: the relationship plan of a customer (targets, pressures, steps)."""

from slack_bolt import Ack, App

from bot.errors import BadInput
from bot.flows import plan as flow
from bot.slack import people
from bot.slack.state import action_value, metadata, read_state, workspace_of
from bot.slack.text import rest_after
from handlers.args import joined, split
from handlers.crm import Command, Reply, Router, Subcommand

PLAN = Subcommand(
    name="plan",
    usage="/crm plan <customer> [target …|pressure <macro|internal|competitor|supplier> <text>|step <text> due:<date> "
          "[@owner]]",
    summary="the relationship plan: targets by a date, the four pressures, steps that become follow-ups",
    examples=['/crm plan "Acme Corp"', "/crm plan acme target org:key_supplier by:2027-Q1",
              '/crm plan acme target "Li Wei" level:4 by:2027-03-31',
              "/crm plan acme pressure competitor Globex offers 20% off",
              "/crm plan acme step Workshop with the IT team due:2026-12-10 @bob"],
    run=lambda command: plan(command),
    group="Relationship",
)
TARGET_USAGE = ('`/crm plan <customer> target org:<vendor|supplier|key_supplier|strategic_partner> by:<2027-Q1>` or '
                '`/crm plan <customer> target "<contact>" level:<1-5> by:<2027-03-31>`')


def plan(command: Command) -> Reply:
    if not command.args:
        raise BadInput("Which customer?", hint=PLAN.usage_hint())
    query, rest = command.args[0].text, command.args[1:]
    if not rest:
        return _reply(flow.show(command.runtime, workspace_id=command.workspace_id, query=query))
    what = rest[0].text.lower() if not rest[0].quoted else ""
    if what == "target":
        return _target(command, query, rest[1:])
    if what == "pressure":
        if len(rest) < 3:
            raise BadInput("Which pressure, and what is it?",
                           hint="Example: `/crm plan acme pressure competitor Globex offers 20% off`.")
        shown = flow.set_pressure(command.runtime, workspace_id=command.workspace_id, actor=command.actor(),
                                  query=query, kind=rest[1].text, text=rest_after(command.text, rest[1]))
        return _reply(shown)
    if what == "step":
        return _step(command, query, rest[1:])
    raise BadInput(f"`/crm plan` shows a plan, or changes it with `target`, `pressure` or `step`, not "
                   f"“{rest[0].text}”.", hint=PLAN.usage_hint())


def _target(command: Command, query: str, tokens) -> Reply:
    args = split(tokens, options={"org", "level", "by"}, usage=TARGET_USAGE)
    options = args.options
    if "by" not in options:
        raise BadInput("A target needs a date: `by:2027-Q1` or `by:2027-03-31`.", hint=TARGET_USAGE)
    if "org" in options and ("level" in options or args.words):
        raise BadInput("A target is either the org relationship or one person's level.", hint=TARGET_USAGE)
    if "org" not in options and not ("level" in options and len(args.words) == 1):
        raise BadInput("Give `org:<level>`, or a person (in quotes) and `level:<1-5>`.", hint=TARGET_USAGE)
    shown = flow.set_target(command.runtime, workspace_id=command.workspace_id, actor=command.actor(), query=query,
                            by=options["by"], org=options.get("org"),
                            contact=args.words[0].text if args.words else None, level=options.get("level"))
    return _reply(shown)


def _step(command: Command, query: str, tokens) -> Reply:
    usage = "`/crm plan <customer> step <what to do> due:<2026-12-10|friday|tomorrow> [@owner]`"
    args = split(tokens, options={"due"}, usage=usage)
    if "due" not in args.options or not args.words:
        raise BadInput("A step needs what to do and `due:<date>`.", hint=usage)
    if len(args.users) > 1 or args.channels:
        raise BadInput("A step has one owner, given as @name.", hint=usage)
    owner = args.users[0] if args.users else None
    if owner and owner != command.user_id:
        command.ensure_teammate(owner, role="owner")
    shown = flow.add_step(command.runtime, command.client, workspace_id=command.workspace_id, actor=command.actor(),
                          query=query, text=joined(args.words), due=args.options["due"], owner_id=owner)
    return _reply(shown)


def _reply(shown: flow.Shown) -> Reply:
    return Reply(text=shown.text, blocks=shown.blocks)


def register(app: App, router: Router) -> None:
    router.add(PLAN)

    @app.action(flow.EDIT_ACTION)
    def edit_button(ack: Ack, body, context, client):
        ack()
        flow.open_form(context["runtime"], client, trigger_id=body["trigger_id"],
                       workspace_id=workspace_of(body, context), customer_id=action_value(body))

    @app.view(flow.FORM)
    def form_submitted(ack: Ack, body, context, client):
        runtime, team, user_id = context["runtime"], workspace_of(body, context), body["user"]["id"]
        actor = people.actor(runtime, client, workspace_id=team, user_id=user_id, person=context.get("person"))
        flow.save_form(runtime, client, workspace_id=team, actor=actor, customer_id=metadata(body["view"]).get("customer_id"),
                       values=read_state(body["view"]))
        ack()
