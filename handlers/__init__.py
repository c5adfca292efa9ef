"""Thin Bolt listeners, one module per feature; `register_all` is the one place they are wired."""

from slack_bolt import App

from handlers import (
    channels,
    config,
    crm,
    customers,
    digest,
    forms,
    help,
    home,
    plan,
    reminders,
    stats,
    surveys,
    workspaces,
)


def register_all(app: App) -> crm.Router:
    router = crm.Router()
    crm.register(app, router)
    for feature in (help, customers, forms, reminders, surveys, digest, stats, home, plan, config, workspaces, channels):
        feature.register(app, router)
    return router
