"""The customer card as a reply: one template, shown the same from a command, a button or App Home."""

from bot.services.card import customer_card
from bot.services.vocabulary import human
from bot.slack.render import render
from handlers.crm import Reply


def card_reply(session, workspace, customer, now, *, notice: str | None = None) -> Reply:
    card = customer_card(session, workspace=workspace, customer=customer, now=now)
    blocks = render("customer_card.j2", card=card, notice=notice)
    return Reply(text=f"{customer.name}: {human(customer.tier)} customer, {human(customer.stage)}", blocks=blocks)
