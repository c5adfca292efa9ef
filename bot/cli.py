"""The `rapport` command: serve, console, migrate (and the data tools as they arrive)."""

import logging
import sys

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
    # Typer's defaults are OptionInfo objects when a command is called as a function: pass every argument.
    if settings.has_slack_credentials:
        serve(host="0.0.0.0", port=3000, socket=False, scheduler=True, log_format=None, metrics_port=None)  # noqa: S104
    else:
        typer.secho("No Slack credentials set: opening the local console (see README to connect Slack).", err=True)
        console(script=None)


@cli.command()
def serve(
    host: str = typer.Option("0.0.0.0", help="address to listen on (HTTP mode, --metrics-port)"),  # noqa: S104
    port: int = typer.Option(3000, help="HTTP mode: port"),
    socket: bool = typer.Option(False, "--socket", help="Socket Mode (also chosen when SLACK_APP_TOKEN is set)"),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="run reminders and the digest here"),
    log_format: str = typer.Option(None, "--log-format", help="text, or json: one object a line (LOG_FORMAT)"),
    metrics_port: int = typer.Option(None, "--metrics-port",
                                     help="GET /metrics and /healthz on this port too (Socket Mode has no other)"),
) -> None:
    """Run the bot against Slack: HTTP mode on /slack/events, or Socket Mode."""
    from bot.app import build_app
    from bot.runtime import open_runtime
    from bot.scheduler import start_scheduler
    from bot.server import serve_http, serve_ops, serve_socket_mode
    from bot.slack.startup import check_bot_token, open_socket_url

    settings = load_settings(log_format=log_format) if log_format else load_settings()
    settings.apply_logging()
    socket_mode = socket or bool(settings.slack_app_token)
    settings.require_for_serving(socket_mode=socket_mode)
    runtime = open_runtime(settings)
    # Each token is put to Slack before anything starts: a refusal is one line naming the setting (SlackRefused).
    if settings.slack_bot_token:
        check_bot_token(runtime.client)
    socket_url = open_socket_url(runtime.client, settings.slack_app_token) if socket_mode else None
    app = build_app(runtime)  # Bolt's own auth.test at build now passes; its answer serves the first request
    if scheduler:
        start_scheduler(runtime)
    if metrics_port is not None:
        serve_ops(runtime.engine, host=host, port=metrics_port)
    if socket_mode:
        serve_socket_mode(app, settings.slack_app_token, url=socket_url)
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
    from bot.db import current_revision

    engine = _open_database()
    typer.echo(f"database at revision {current_revision(engine)}")


# -- import / export ------------------------------------------------------------------------------------

IMPORTED_BY = "USLACKBOT"  # Slack shows it as Slackbot: the change came from a tool, not from a person
EXPORTS = ("customers", "surveys")  # `rapport export <what>`


class _Refused(Exception):
    """The command cannot run as asked; the message says why (exit code 2)."""


class _DryRun(Exception):
    """Raised at the end of a dry run's import so session_scope rolls everything back."""

    def __init__(self, report):
        super().__init__("dry run")
        self.report = report


def _workspace_for(session, given: str | None, *, now, create: bool):
    """--workspace, else the only workspace in the database, else the console's when there is none."""
    from sqlmodel import select

    from bot.services.workspaces import ensure_workspace
    from bot.slack.presets import HOME_TEAM
    from models import Workspace

    ids = list(session.exec(select(Workspace.id).order_by(Workspace.id).limit(51)).all())
    listed = ", ".join(ids[:50]) + (", …" if len(ids) > 50 else "")
    if given:
        if given in ids or (not ids and create):
            return ensure_workspace(session, workspace_id=given, now=now)
        if not ids:
            return Workspace(id=given, created_at=now)  # nothing stored yet: an empty export
        raise _Refused(f"no workspace {given} in the database; workspaces: {listed}")
    if len(ids) == 1:
        return session.get(Workspace, ids[0])
    if not ids:
        if create:
            return ensure_workspace(session, workspace_id=HOME_TEAM, now=now)
        return Workspace(id=HOME_TEAM, created_at=now)
    raise _Refused(f"the database holds several workspaces; choose one with --workspace: {listed}")


def _ask_slack_for(settings: Settings, engine, workspace: str | None):
    """users.lookupByEmail with the import's workspace's own client (its installation's token under OAuth)."""
    from bot.clock import SystemClock
    from bot.db import read_scope
    from bot.errors import LookupFailed
    from bot.runtime import Runtime
    from bot.slack.client import client_for, make_client
    from bot.slack.installs import WorkspacePaused
    from bot.slack.people import find_by_email

    runtime = Runtime(settings=settings, engine=engine, clock=SystemClock(),
                      client=make_client(base_url=settings.slack_api_url, token=settings.slack_bot_token))

    def ask(email: str):
        with read_scope(engine) as session:
            team = _workspace_for(session, workspace, now=runtime.clock.now(), create=False).id
        try:
            client = client_for(runtime, team)
        except WorkspacePaused as paused:
            raise LookupFailed(f"workspace {team} is not installed or its token is refused ({paused.reason})") from None
        return find_by_email(client, email)

    return ask


def _open_database(settings: Settings | None = None):
    from bot.db import make_engine, upgrade

    engine = make_engine((settings or _settings()).database)
    upgrade(engine)
    return engine


def _rows_per_second(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s" if seconds > 0 else "— rows/s"


IMPORT_KINDS = {"companies": "companies", "customers": "companies", "contacts": "contacts", "persons": "contacts",
                "touches": "touches", "activities": "touches"}  # `rapport import <kind> FILE`


@cli.command("import")
def import_(
    kind: str = typer.Argument(..., metavar="[KIND] FILE", help="companies (also: customers), contacts (persons) "
                               "or touches (activities), then the file; with the file alone the kind is taken "
                               "from its header"),
    file: str = typer.Argument(None, hidden=True, help="CSV (comma, semicolon or tab; UTF-8) or .xlsx; - for stdin"),
    workspace: str = typer.Option(None, "--workspace", help="team id (T…); default: the only one in the database"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="import the good rows even when some rows are bad"),
    by: str = typer.Option(IMPORTED_BY, "--by", help="Slack user id the changes are recorded as made by"),
    maps: list[str] = typer.Option(None, "--map", help="'Source column=field' (repeatable); 'Column=' leaves it "
                                   "unread; overrides the known HubSpot, Salesforce and Pipedrive column names"),
    map_file: str = typer.Option(None, "--map-file", help="a saved mapping: one 'Source column=field' a line"),
    dry_run: bool = typer.Option(False, "--dry-run", help="read everything and report what would be created, "
                                 "updated and skipped; write nothing"),
) -> None:
    """Import companies, contacts or touches (calls, meetings, notes) from CSV or .xlsx — Rapport's own files, or
    HubSpot's, Salesforce's or Pipedrive's exports (their column names and values are recognised; other columns
    are listed and not read): a re-import changes nothing; a file with a bad row writes nothing unless --skip-bad."""
    import os
    import time

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text
    from sqlalchemy.exc import IntegrityError

    from bot.clock import SystemClock
    from bot.db import read_scope, session_scope
    from bot.errors import BadInput
    from bot.services.crm_import import RowsRefused, import_contacts, import_touches
    from bot.services.mapping import guess_kind, parse_overrides
    from bot.services.tables import first_row, rewindable
    from bot.services.transfer import (
        ImportRefused,
        asked_ahead,
        header_mapping,
        import_customers,
        unknown_owner_emails,
    )

    class RowsColumn(ProgressColumn):
        def render(self, task) -> Text:
            rows = task.fields.get("rows", 0)
            return Text(f"{rows:,} rows · {_rows_per_second(rows, task.elapsed or 0)}", style="progress.data.speed")

    if file is None:
        kind, file = "", kind
    elif kind not in IMPORT_KINDS:
        typer.secho(f"rapport import: “{kind}” is not something to import; choose: {', '.join(IMPORT_KINDS)}",
                    err=True, fg="red")
        raise typer.Exit(2)
    try:
        raw = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        typer.secho(f"rapport import: cannot open {file}: {exc.strerror}", err=True, fg="red")
        raise typer.Exit(2) from None
    raw = rewindable(raw)  # standard input is copied aside: the header and owners are read ahead; .xlsx seeks
    try:
        if kind:
            kind = IMPORT_KINDS[kind]
        else:
            header = first_row(raw)
            kind = guess_kind(header[1]) if header else "companies"
            raw.seek(0)
    except BadInput as exc:  # the file cannot be read (not UTF-8, not a workbook…)
        raw.close()
        typer.secho(f"rapport import: {exc.user_text()}", err=True, fg="red")
        raise typer.Exit(1) from None
    try:
        lines = list(maps or [])
        if map_file:
            with open(map_file, encoding="utf-8-sig") as saved:
                lines = saved.read().splitlines() + lines  # --map on the command line wins over the saved file
        columns = parse_overrides(lines, kind=kind)
    except OSError as exc:
        raw.close()
        typer.secho(f"rapport import: cannot open {map_file}: {exc.strerror}", err=True, fg="red")
        raise typer.Exit(2) from None
    except BadInput as exc:
        raw.close()
        typer.secho(f"rapport import: {exc.user_text()}", err=True, fg="red")
        raise typer.Exit(2) from None
    total = None if file == "-" else os.fstat(raw.fileno()).st_size
    settings = _settings()
    engine = _open_database(settings)
    ask_slack = None
    if settings.slack_bot_token or settings.oauth:  # owners by an e-mail nobody has mentioned yet: ask Slack
        ask_slack = _ask_slack_for(settings, engine, workspace)
    stderr = Console(stderr=True)
    bar = Progress(TextColumn("importing"), BarColumn(), DownloadColumn(), RowsColumn(), TimeElapsedColumn(),
                   console=stderr, disable=not stderr.is_terminal)
    task = bar.add_task("import", total=total, rows=0)
    started = time.perf_counter()
    try:
        for line in header_mapping(raw, kind=kind, overrides=columns).lines():  # what is read, before writing
            typer.echo(line, err=True)
        raw.seek(0)
        if kind == "companies" and ask_slack is not None:
            # Owners by e-mail that Rapport has not met: asked of Slack first, not inside the import's transaction.
            with read_scope(engine) as session:  # writes nothing: a refused import leaves no trace
                target_id = _workspace_for(session, workspace, now=SystemClock().now(), create=False).id
                emails = unknown_owner_emails(session, workspace_id=target_id, rows=raw, columns=columns)
            raw.seek(0)
            if emails:
                stderr.print(f"asking Slack about {len(emails):,} owner e-mail{'s' if len(emails) != 1 else ''}…")
            ask_slack = asked_ahead(ask_slack, emails)
        with bar, session_scope(engine) as session:
            now = SystemClock().now()
            target = _workspace_for(session, workspace, now=now, create=True)
            progress = lambda rows: bar.update(task, completed=raw.tell() if total else None, rows=rows)  # noqa: E731
            keep_going = skip_bad or dry_run  # a dry run counts the good rows too
            if kind in ("contacts", "touches"):
                importer = import_touches if kind == "touches" else import_contacts
                report = importer(session, workspace=target, rows=raw, by=by, now=now, skip_bad=keep_going,
                                  columns=columns, progress=progress)
            else:
                report = import_customers(session, workspace=target, rows=raw, by=by, now=now,
                                          skip_bad=keep_going, ask_slack=ask_slack, columns=columns,
                                          progress=progress)
            if dry_run:
                raise _DryRun(report)  # the whole unit of work rolls back: not even the workspace is created
    except _DryRun:
        pass
    except (ImportRefused, RowsRefused) as refused:
        for line, message in refused.report.bad:
            typer.echo(f"line {line}: {message}", err=True)
        count = len(refused.report.bad)
        typer.secho(f"refused: {count:,} bad row{'s' if count != 1 else ''} of {refused.report.rows:,}; nothing "
                    "was imported. Fix them, or pass --skip-bad to import the other rows.", err=True, fg="red")
        raise typer.Exit(1) from None
    except BadInput as exc:
        typer.secho(f"rapport import: {exc.user_text()}", err=True, fg="red")
        raise typer.Exit(1) from None
    except IntegrityError:
        typer.secho("rapport import: a customer in the file was created by someone else while importing; nothing "
                    "was imported. Run the import again: it will update that customer.", err=True, fg="red")
        raise typer.Exit(1) from None
    except _Refused as exc:
        typer.secho(f"rapport import: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    finally:
        raw.close()
        engine.dispose()
    seconds = time.perf_counter() - started
    for line, message in report.bad:
        typer.echo(f"line {line}: {message}", err=True)
    for line in report.mapping.translations() if report.mapping else []:
        typer.echo(f"translated {line}", err=True)
    bad = f"{len(report.bad):,} bad row{'s' if len(report.bad) != 1 else ''}"
    rows = f"{report.rows:,} row{'s' if report.rows != 1 else ''}"
    if kind in ("contacts", "touches"):
        updated = f"{report.updated:,} updated, " if kind == "contacts" else ""
        counts = f"{report.added:,} {kind} added, {updated}{report.unchanged:,} already there"
    else:
        counts = (f"{report.created:,} created, {report.updated:,} updated, {report.unchanged:,} unchanged;"
                  f" contacts {report.contacts_added:,} added, {report.contacts_updated:,} updated")
    if dry_run:
        typer.echo(f"dry run: {rows} read; a run would write {counts}" + (f"; {bad} skipped" if report.bad else "")
                   + "; nothing was written")
        if report.bad and not skip_bad:
            typer.secho(f"a run without --skip-bad would refuse the file ({bad}) and write nothing", err=True,
                        fg="red")
        return
    typer.echo(
        f"imported {rows} into {target.id} in {seconds:.1f} s ({_rows_per_second(report.rows, seconds)}): {counts}"
        + (f"; {bad} skipped" if report.bad else "")
        + (f"; {report.owners_asked:,} owner e-mail{'s' if report.owners_asked != 1 else ''} looked up in Slack"
           if kind == "companies" and report.owners_asked else "")
    )


@cli.command("export")
def export(
    what: str = typer.Argument("customers", metavar="WHAT", help=f"what to export: {', '.join(EXPORTS)}"),
    file: str = typer.Argument(None, metavar="FILE", help="CSV file to write; - or nothing: standard output"),
    workspace: str = typer.Option(None, "--workspace", help="team id (T…); default: the only one in the database"),
) -> None:
    """Export customers as CSV (the format `rapport import` reads: a re-import changes nothing), or survey answers."""
    import os
    import tempfile

    from bot.clock import SystemClock
    from bot.db import read_scope
    from bot.services.transfer import export_customers, export_surveys

    if what not in EXPORTS:
        if file is not None:
            typer.secho(f"rapport export: nothing called “{what}” to export; choose: {', '.join(EXPORTS)}",
                        err=True, fg="red")
            raise typer.Exit(2)
        what, file = "customers", what  # `rapport export out.csv`
    engine = _open_database()
    to_stdout = file in (None, "-")
    out = None
    try:
        if to_stdout:
            out = sys.stdout
        else:
            # Written beside the target and renamed at the end: a failed export leaves the old file alone.
            target_dir = os.path.dirname(os.path.abspath(file))
            handle, partial = tempfile.mkstemp(prefix=".rapport-export-", suffix=".csv", dir=target_dir)
            out = open(handle, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115  BOM: spreadsheets read UTF-8
        with read_scope(engine) as session:  # on SQLite, writers are not held up while it runs
            target = _workspace_for(session, workspace, now=SystemClock().now(), create=False)
            exporter = export_surveys if what == "surveys" else export_customers
            count = exporter(session, workspace_id=target.id, out=out)
        if not to_stdout:
            out.close()
            os.replace(partial, file)
    except _Refused as exc:
        typer.secho(f"rapport export: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.secho(f"rapport export: cannot write {file}: {exc.strerror}", err=True, fg="red")
        raise typer.Exit(2) from None
    finally:
        if out is not None and not to_stdout and not out.closed:
            out.close()
            os.unlink(partial)
        engine.dispose()
    typer.echo(f"exported {count:,} {what} of {target.id} to {'standard output' if to_stdout else file}", err=True)


@cli.command("digest")
def digest_command(
    preview: bool = typer.Option(True, "--preview/--no-preview", help="print the digest as of now (posts nothing)"),
    workspace: str = typer.Option(None, "--workspace", help="team id (T…); default: the only one in the database"),
) -> None:
    """Print the weekly key-account digest as it would be posted now, in the terminal."""
    from bot.clock import SystemClock
    from bot.console import Names, render_blocks
    from bot.db import read_scope
    from bot.services.digest import build_digest
    from bot.slack.digest import blocks_for

    engine = _open_database()
    try:
        with read_scope(engine) as session:
            target = _workspace_for(session, workspace, now=SystemClock().now(), create=False)
            built = build_digest(session, workspace=target, now=SystemClock().now())
            blocks = blocks_for(built, target, preview=preview)
    except _Refused as exc:
        typer.secho(f"rapport digest: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    for line, _style in render_blocks(blocks, Names()):
        typer.echo(line)


@cli.command("demo-data")
def demo_data(
    workspace: str = typer.Option(None, "--workspace", help="team id (T…); default: the console's workspace"),
) -> None:
    """Fill an empty workspace with a small demo portfolio (history, surveys, follow-ups, past health)."""
    from bot.clock import SystemClock
    from bot.db import session_scope
    from bot.services.demo import seed_demo
    from bot.slack import presets

    engine = _open_database()
    try:
        with session_scope(engine) as session:
            now = SystemClock().now()
            target = _workspace_for(session, workspace, now=now, create=True)
            if target.id == presets.HOME_TEAM and not target.managers:  # as the console sets it up
                presets.set_up_as_console(target)
            reps = [presets.person("alice").id, presets.person("bob").id]
            created = seed_demo(session, workspace=target, owners=reps, customer_person=presets.person("carol").id,
                                now=now)
    except _Refused as exc:
        typer.secho(f"rapport demo-data: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"created {created} demo customers in {target.id}" if created
               else f"{target.id} already has customers; nothing added")


def main() -> None:
    try:
        cli()
    except ConfigError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        sys.exit(2)

