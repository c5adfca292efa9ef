"""The `rapport` command: serve, console, migrate (and the data tools as they arrive)."""

import logging
import sys
from pathlib import Path

import typer

from bot.config import ConfigError, Settings, load_settings

cli = typer.Typer(
    help="Rapport: customer relationships, reminders, surveys and the key-account digest in Slack.",
    add_completion=False,
    no_args_is_help=False,
)
log = logging.getLogger("rapport")


def _settings() -> Settings:
    settings = load_settings()
    settings.apply_logging()
    return settings


@cli.callback(invoke_without_command=True)
def default(ctx: typer.Context) -> None:
    """With Slack credentials: serve. Without: open the local console."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    if settings.has_slack_credentials:
        ctx.invoke(serve)
    else:
        typer.secho("No Slack credentials set: opening the local console (see README to connect Slack).", err=True)
        ctx.invoke(console)


@cli.command()
def serve(
    host: str = typer.Option("0.0.0.0", help="HTTP mode: address to listen on"),  # noqa: S104
    port: int = typer.Option(3000, help="HTTP mode: port"),
    socket: bool = typer.Option(False, "--socket", help="Socket Mode (also chosen when SLACK_APP_TOKEN is set)"),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="run reminders and the digest here"),
) -> None:
    """Run the bot against Slack: HTTP mode on /slack/events, or Socket Mode."""
    from bot.app import build_app
    from bot.runtime import open_runtime
    from bot.scheduler import start_scheduler
    from bot.server import serve_http, serve_socket_mode

    settings = _settings()
    socket_mode = socket or bool(settings.slack_app_token)
    settings.require_for_serving(socket_mode=socket_mode)
    runtime = open_runtime(settings)
    app = build_app(runtime)
    if scheduler:
        start_scheduler(runtime)
    if socket_mode:
        serve_socket_mode(app, settings.slack_app_token)
    else:
        serve_http(app, runtime.engine, host=host, port=port)


@cli.command()
def console(
    script: str = typer.Option(None, "--script", help="run actions from a file (- for stdin) instead of a prompt"),
) -> None:
    """A local Slack simulator in the terminal: no Slack account needed."""
    from bot.console import run_console

    settings = _settings()
    # Unhandled-request hints from Bolt are noise in the simulator; real errors still show.
    logging.getLogger("slack_bolt").setLevel(logging.ERROR)
    raise typer.Exit(run_console(settings, script=script))


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to the newest version (also done at every start)."""
    from bot.db import current_revision, make_engine, upgrade

    settings = _settings()
    engine = make_engine(settings.database)
    upgrade(engine)
    typer.echo(f"database at revision {current_revision(engine)}")


def main() -> None:
    try:
        cli()
    except ConfigError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        sys.exit(2)


__all__ = ["cli", "main", "Path"]
