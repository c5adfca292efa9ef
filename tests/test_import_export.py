"""Customers in and out as CSV: an admin imports a spreadsheet, fixes it, imports it again, exports it back."""

import io
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import cli
from bot.db import make_engine, session_scope
from bot.errors import BadInput
from bot.services.customers import create_customer, set_contact
from bot.services.transfer import ImportRefused, export_customers, import_customers
from bot.services.workspaces import ensure_workspace
from bot.slack.presets import HOME_TEAM
from models import Contact, Customer, RelationshipChange, SlackUser

ADMIN = "U0MEI"

SPREADSHEET = """\
name,tier,stage,org,owner,channel,contacts
Acme Corp,关键,active,供应商,U0ALICE,C0ACME,Li Wei:decision_maker:4; Ann Lee:user:2
Globex,general,,,BOB@rapport.example,,
Initech,longtail,converting,,,,Peter Gibbons
"""


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def team(engine, clock):
    """The console's workspace, with bob in the people cache so his e-mail resolves to him."""
    with session_scope(engine) as session:
        ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
        session.add(SlackUser(workspace_id=HOME_TEAM, user_id="U0BOB", email="bob@rapport.example",
                              fetched_at=clock.now()))
    return HOME_TEAM


def imported(engine, clock, text, *, skip_bad=False, workspace_id=HOME_TEAM, by=ADMIN):
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=workspace_id, now=clock.now())
        return import_customers(session, workspace=workspace, rows=io.StringIO(text), by=by, now=clock.now(),
                                skip_bad=skip_bad)


def exported(engine, workspace_id=HOME_TEAM) -> str:
    out = io.StringIO()
    with session_scope(engine) as session:
        export_customers(session, workspace_id=workspace_id, out=out)
    return out.getvalue()


def counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return tuple(session.exec(select(func.count()).select_from(table)).one()
                     for table in (Customer, Contact, RelationshipChange))


def customer(engine, name) -> tuple[Customer, dict[str, Contact]]:
    with session_scope(engine) as session:
        found = session.exec(select(Customer).where(Customer.name == name)).one()
        chain = session.exec(select(Contact).where(Contact.customer_id == found.id)).all()
        return found, {contact.name: contact for contact in chain}


def test_an_admin_imports_customers_with_owners_tiers_and_decision_chains(engine, clock, team):
    report = imported(engine, clock, SPREADSHEET)
    assert (report.created, report.updated, report.unchanged, report.contacts_added, report.bad) == (3, 0, 0, 3, [])

    acme, chain = customer(engine, "Acme Corp")
    assert (acme.tier, acme.stage, acme.org_relationship) == ("key", "active", "supplier")  # 关键 and 供应商 read
    assert (acme.owner_id, acme.channel_id, acme.created_by) == ("U0ALICE", "C0ACME", ADMIN)
    assert acme.revisit_due_at == clock.now() + timedelta(days=14)  # a key account's cadence
    assert {name: (c.role, c.level) for name, c in chain.items()} == {
        "Li Wei": ("decision_maker", 4), "Ann Lee": ("user", 2)}

    globex, _ = customer(engine, "Globex")
    assert globex.owner_id == "U0BOB"  # found by e-mail, whatever its case
    assert globex.revisit_due_at == clock.now() + timedelta(days=45)
    _, initech_chain = customer(engine, "Initech")
    assert (initech_chain["Peter Gibbons"].role, initech_chain["Peter Gibbons"].level) == ("influencer", 1)

    with session_scope(engine) as session:  # each person joins the decision chain in history, as /crm contact does
        added = session.exec(select(RelationshipChange).where(RelationshipChange.field == "level")).all()
        assert len(added) == 3
        assert {(c.from_value, c.by_user, c.reason) for c in added} == {(None, ADMIN, "CSV import")}


def test_importing_the_same_file_again_changes_nothing(engine, clock, team):
    imported(engine, clock, SPREADSHEET)
    before = counts(engine)
    clock.advance(timedelta(days=1))
    again = imported(engine, clock, SPREADSHEET)
    assert (again.created, again.updated, again.unchanged, again.contacts_added, again.contacts_updated) == (
        0, 0, 3, 0, 0)
    assert counts(engine) == before
    acme, _ = customer(engine, "Acme Corp")
    assert acme.updated_at == clock.now() - timedelta(days=1)


def test_a_changed_row_updates_the_customer_and_writes_history(engine, clock, team):
    imported(engine, clock, SPREADSHEET)
    clock.advance(timedelta(days=3))
    changed = SPREADSHEET.replace("Acme Corp,关键,active", "ACME corp,longtail,expanding").replace(
        "U0ALICE", "U0BOB").replace("Li Wei:decision_maker:4", "Li Wei::5")
    report = imported(engine, clock, changed)
    assert (report.created, report.updated, report.unchanged, report.contacts_updated) == (0, 1, 2, 1)

    acme, chain = customer(engine, "ACME corp")  # same customer (names match case-insensitively), new spelling
    assert (acme.tier, acme.stage, acme.owner_id) == ("longtail", "expanding", "U0BOB")
    assert acme.revisit_due_at == acme.created_at + timedelta(days=90)  # the new tier's cadence
    assert acme.updated_at == clock.now()
    assert (chain["Li Wei"].role, chain["Li Wei"].level) == ("decision_maker", 5)  # an empty role keeps the old

    with session_scope(engine) as session:
        history = session.exec(
            select(RelationshipChange).where(RelationshipChange.customer_id == acme.id,
                                             RelationshipChange.at == clock.now())
        ).all()
        assert sorted((c.field, c.from_value, c.to_value) for c in history) == [
            ("level", "4", "5"), ("owner", "U0ALICE", "U0BOB"), ("stage", "active", "expanding"),
            ("tier", "key", "longtail")]
        assert {(c.by_user, c.reason) for c in history} == {(ADMIN, "CSV import")}


def test_a_file_with_bad_rows_writes_nothing_and_names_every_line(engine, clock, team):
    bad = (
        "Name,Tier,Owner,Contacts\n"              # 1: column names in any case
        "Acme Corp,key,U0ALICE,\n"                # 2
        '"Globex\n(the old one)",gold,,\n'        # 3-4: a quoted newline takes two lines (and a name has one)
        "Initech,general,nobody@nowhere.example,\n"  # 5
        "acme corp,general,,\n"                   # 6
        "Hooli,key,,Gavin:ceo:3\n"                # 7
        "Umbrella,key,,Alice:user:9\n"            # 8
        "Soylent,key,,extra\n".replace(",extra", ",extra,value")  # 9: one value too many
    )
    with pytest.raises(ImportRefused) as refused:
        imported(engine, clock, bad)
    assert refused.value.report.bad == [
        (3, "the customer name must be on one line."),
        (5, "owner “nobody@nowhere.example”: no one with this e-mail is known in this workspace (Slack was "
            "not asked: no bot token); give their Slack user id (U…) instead."),
        (6, "same name as line 2 (“acme corp”)."),
        (7, "contact “Gavin”: role “ceo” is not a role. Choose one of: decision_maker, influencer, evaluator, "
            "user, procurement, champion."),
        (8, "contact “Alice”: a relationship level is 1 to 5, not 9. Levels: 1 contact, 2 acceptance, "
            "3 favorable, 4 supportive, 5 exclusive."),
        (9, "the row has 5 values but the header has 4 columns (a comma or a quote out of place?)."),
    ]
    assert "line 3: the customer name must be on one line" in refused.value.message
    assert counts(engine) == (0, 0, 0)  # not even Acme Corp, the good row before the bad ones

    with session_scope(engine) as session:  # a caller that swallows the refusal and commits still writes nothing
        workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
        with pytest.raises(ImportRefused):
            import_customers(session, workspace=workspace, rows=io.StringIO(bad), by=ADMIN, now=clock.now())
    assert counts(engine) == (0, 0, 0)


def test_skip_bad_imports_the_good_rows_and_reports_the_others(engine, clock, team):
    report = imported(engine, clock, SPREADSHEET + "Hooli,platinum,,,,,\n", skip_bad=True)
    assert report.created == 3
    assert report.bad == [(5, "tier “platinum” is not a tier. Choose one of: key, general, longtail.")]
    assert counts(engine)[0] == 3


def test_columns_rapport_does_not_know_are_ignored_and_listed(engine, clock, team):
    report = imported(engine, clock, "\ufeffname,tier,Annual Revenue,revenue\nAcme,key,100,1\nGlobex,key,200,2\n")
    assert (report.created, report.bad, report.ignored_columns) == (2, [], ["Annual Revenue", "revenue"])
    assert customer(engine, "Acme")[0].tier == "key"
    with pytest.raises(BadInput, match="no “name” column"):
        imported(engine, clock, "tier\nkey\n")
    with pytest.raises(BadInput, match="The header names “tier” more than once"):
        imported(engine, clock, "name,tier,Tier\nAcme,key,general\n")


def test_rows_can_come_as_dicts_with_their_line_numbers(engine, clock, team):
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
        report = import_customers(session, workspace=workspace, by=ADMIN, now=clock.now(), skip_bad=True, rows=[
            (2, {"Name": "Acme Corp", "tier": "strategic", "Revenue": "9"}), (3, {"name": "", "tier": "key"})])
    assert report.created == 1 and report.bad == [(3, "the customer name is empty.")]
    assert report.ignored_columns == ["Revenue"]
    assert customer(engine, "Acme Corp")[0].tier == "key"


def test_an_export_imports_back_as_a_no_op(engine, clock, team):
    imported(engine, clock, SPREADSHEET)
    text = exported(engine)
    assert text.splitlines()[:2] == [
        "name,tier,stage,org,owner,channel,contacts",
        "Acme Corp,key,active,supplier,U0ALICE,C0ACME,Li Wei:decision_maker:4; Ann Lee:user:2",
    ]
    before = counts(engine)
    report = imported(engine, clock, text)
    assert (report.unchanged, report.updated, report.created, report.contacts_added) == (3, 0, 0, 0)
    assert counts(engine) == before


def test_hostile_text_survives_the_round_trip(engine, clock, team):
    names = [
        'He said "hi", then left',
        "Line one; line two, with a comma\ttab",
        "<!channel> & <@U0MEI>",
        "北京科技有限公司 😀",
        "=HYPERLINK(\"http://evil.example\",\"click\")",  # a spreadsheet must not run it
        "'=already quoted",
        "-minus; semi: colon \\ backslash",
    ]
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
        for name in names:
            made = create_customer(session, workspace=workspace, name=name, by="U0ALICE", now=clock.now())
            set_contact(session, workspace=workspace, customer=made, name="@Dr. No: the; boss\\", role="dm",
                        level=3, actor=_admin(), now=clock.now())
            set_contact(session, workspace=workspace, customer=made, name="李伟 😀", actor=_admin(), now=clock.now())
    text = exported(engine)
    assert "\n=" not in text and ",=" not in text and ",@" not in text  # formulas are defused with a quote

    before = counts(engine)
    again = imported(engine, clock, text)
    assert (again.unchanged, again.updated, again.created, again.contacts_added, again.bad) == (len(names), 0, 0, 0, [])
    assert counts(engine) == before

    imported(engine, clock, text, workspace_id="T0ELSEWHERE")  # into an empty workspace: the same customers
    assert exported(engine, "T0ELSEWHERE") == text


def _admin():
    from bot.services.customers import Actor

    return Actor(user_id=ADMIN, is_admin=True)


def test_the_cli_refuses_a_bad_file_with_line_numbers_then_imports_and_exports(engine, database_url, tmp_path):
    path = tmp_path / "customers.csv"
    path.write_text(SPREADSHEET.replace("Globex,general", "Globex,gold"), encoding="utf-8-sig")
    runner = CliRunner(env={"DATABASE_URL": database_url})

    refused = runner.invoke(cli, ["import", str(path)])
    assert refused.exit_code == 1
    assert "line 3: tier “gold” is not a tier. Choose one of: key, general, longtail." in refused.stderr
    assert "nothing was imported" in refused.stderr

    done = runner.invoke(cli, ["import", str(path), "--skip-bad", "--by", ADMIN])
    assert done.exit_code == 0, done.output
    assert "2 created" in done.stdout and "1 bad row skipped" in done.stdout and "rows/s" in done.stdout
    assert customer(engine, "Acme Corp")[0].workspace_id == HOME_TEAM  # no workspace yet: the console's

    out = tmp_path / "out.csv"
    assert runner.invoke(cli, ["export", str(out)]).exit_code == 0
    on_stdout = runner.invoke(cli, ["export", "customers", "-"]).stdout
    assert on_stdout == exported(engine).replace("\r\n", "\n")  # (the runner reads newlines universally)
    assert out.read_bytes() == "\ufeff".encode() + exported(engine).encode()  # a BOM, so spreadsheets read UTF-8

    with session_scope(engine) as session:
        ensure_workspace(session, workspace_id="T0OTHER", now=customer(engine, "Acme Corp")[0].created_at)
    ambiguous = runner.invoke(cli, ["export"])
    assert ambiguous.exit_code == 2 and "T0OTHER, T0RAPPORT" in ambiguous.stderr


# -- owners by e-mail that Rapport has not met yet --------------------------------------------------------------

NEW_OWNERS = """\
name,tier,stage,org,owner,channel,contacts
Umbrella,key,,,DANA@rapport.example,,
Hooli,general,,,dana@rapport.example,,
Vandelay,general,,,nobody@rapport.example,,
Wonka,general,,,NOBODY@rapport.example,,
Soylent,general,,,carol@acme.example,,
"""


def ask_slack_through(fake):
    from bot.slack.client import make_client
    from bot.slack.people import find_by_email

    client = make_client(base_url=fake.api_url, token="xoxb-test")
    return lambda email: find_by_email(client, email)


def test_an_owner_email_nobody_mentioned_yet_is_looked_up_in_slack_once(engine, clock, team, fake_slack):
    fake_slack.add_user("U0DANA", name="dana", team_id=HOME_TEAM, email="dana@rapport.example")
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
        report = import_customers(session, workspace=workspace, rows=io.StringIO(NEW_OWNERS), by=ADMIN,
                                  now=clock.now(), skip_bad=True, ask_slack=ask_slack_through(fake_slack))
    assert report.created == 2 and report.owners_asked == 3  # dana, nobody and carol: each asked once
    assert len(fake_slack.calls("users.lookupByEmail")) == 3
    assert customer(engine, "Umbrella")[0].owner_id == customer(engine, "Hooli")[0].owner_id == "U0DANA"
    assert report.bad == [
        (4, "owner “nobody@rapport.example”: no one in this Slack workspace has this e-mail; give their Slack "
            "user id (U…) instead."),
        (5, "owner “NOBODY@rapport.example”: no one in this Slack workspace has this e-mail; give their Slack "
            "user id (U…) instead."),
        (6, "owner “carol@acme.example” is a guest or from another organisation (U0CAROL); owners are members "
            "of our own team."),
    ]
    with session_scope(engine) as session:  # dana joins the people cache: the next import needs no Slack
        assert session.get(SlackUser, (HOME_TEAM, "U0DANA")).email == "dana@rapport.example"
        workspace = session.get(type(workspace), HOME_TEAM)
        again = import_customers(session, workspace=workspace, rows=io.StringIO(NEW_OWNERS.split("Vandelay")[0]),
                                 by=ADMIN, now=clock.now(), ask_slack=ask_slack_through(fake_slack))
    assert (again.unchanged, again.owners_asked) == (2, 0)


def test_when_slack_cannot_be_asked_the_row_says_so_and_nothing_is_written(engine, clock, team, fake_slack):
    fake_slack.add_user("U0DANA", name="dana", team_id=HOME_TEAM, email="dana@rapport.example")
    fake_slack.inject("users.lookupByEmail", "account_inactive", times=5)
    with pytest.raises(ImportRefused) as refused, session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
        import_customers(session, workspace=workspace, rows=io.StringIO(NEW_OWNERS.split("Hooli")[0]),
                         by=ADMIN, now=clock.now(), ask_slack=ask_slack_through(fake_slack))
    assert refused.value.report.bad == [
        (2, "owner “DANA@rapport.example”: Slack could not be asked who has this e-mail (account_inactive); give "
            "their Slack user id (U…) instead.")]
    assert counts(engine) == (0, 0, 0)


def test_the_cli_asks_slack_for_owners_when_it_has_a_token(engine, database_url, tmp_path, fake_slack):
    fake_slack.add_user("U0DANA", name="dana", team_id=HOME_TEAM, email="dana@rapport.example")
    path = tmp_path / "owners.csv"
    path.write_text(NEW_OWNERS.split("Vandelay")[0], encoding="utf-8")
    env = {"DATABASE_URL": database_url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake_slack.api_url}
    done = CliRunner(env=env).invoke(cli, ["import", str(path), "--by", ADMIN])
    assert done.exit_code == 0, done.output
    assert "2 created" in done.stdout and "1 owner e-mail looked up in Slack" in done.stdout
    assert "asking Slack about 1 owner e-mail" in done.stderr  # before the import's transaction, not inside it
    assert len(fake_slack.calls("users.lookupByEmail")) == 1
    assert customer(engine, "Hooli")[0].owner_id == "U0DANA"

    again = CliRunner(env=env).invoke(cli, ["import", str(path), "--by", ADMIN])  # dana is known now
    assert again.exit_code == 0 and "asking Slack" not in again.stderr
    assert len(fake_slack.calls("users.lookupByEmail")) == 1


# -- files as spreadsheets and CRMs write them ----------------------------------------------------------------


def imported_bytes(engine, clock, data: bytes, *, workspace_id=HOME_TEAM):
    with session_scope(engine) as session:
        workspace = ensure_workspace(session, workspace_id=workspace_id, now=clock.now())
        return import_customers(session, workspace=workspace, rows=io.BytesIO(data), by=ADMIN, now=clock.now())


def as_xlsx(text: str) -> bytes:
    import csv

    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Companies")
    for row in csv.reader(io.StringIO(text)):
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_semicolon_tab_bom_crlf_and_xlsx_files_import_the_same_as_the_comma_csv(engine, clock, team):
    import csv

    spreadsheet = SPREADSHEET.replace("BOB@rapport.example", "U0BOB")  # (bob is known in the console's workspace)
    imported_bytes(engine, clock, spreadsheet.encode(), workspace_id="T0COMMA")
    expected = exported(engine, "T0COMMA")
    rows = list(csv.reader(io.StringIO(spreadsheet)))

    def written(delimiter: str) -> str:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
        return out.getvalue()

    files = {
        "T0SEMI": "\ufeff".encode() + written(";").encode(),  # Excel's CSV in a European locale, with a BOM
        "T0TAB": written("\t").encode(),
        "T0XLSX": as_xlsx(spreadsheet),
    }
    assert b";" in files["T0SEMI"] and b"\r\n" in files["T0SEMI"] and files["T0XLSX"][:2] == b"PK"
    for workspace_id, data in files.items():
        report = imported_bytes(engine, clock, data, workspace_id=workspace_id)
        assert (report.created, report.contacts_added, report.bad) == (3, 3, []), workspace_id
        assert exported(engine, workspace_id) == expected, workspace_id


def test_a_latin1_file_is_refused_with_how_to_make_it_utf8(engine, clock, team):
    latin1 = "name,tier\nCafé Müller,key\n".encode("latin-1")
    with pytest.raises(BadInput) as refused:
        imported_bytes(engine, clock, latin1)
    assert refused.value.message.startswith("The file is not UTF-8 text: byte 0xE9 on line 2 is not UTF-8")
    assert "CSV UTF-8" in refused.value.hint and "iconv -f latin1 -t utf-8" in refused.value.hint
    late = ("name,tier\n" + "Acme,key\n" * 10_000 + "Café,key\n").encode("latin-1")  # past the first lines
    with pytest.raises(BadInput, match="byte 0xE9 on line 10002 is not UTF-8"):
        imported_bytes(engine, clock, late)
    with pytest.raises(BadInput, match="UTF-16"):
        imported_bytes(engine, clock, "name\nAcme\n".encode("utf-16"))
    assert counts(engine) == (0, 0, 0)


def test_the_cli_imports_an_xlsx_and_standard_input_and_lists_the_columns_it_ignored(engine, database_url, tmp_path,
                                                                                    team):
    import csv

    path = tmp_path / "companies.xlsx"
    path.write_bytes(as_xlsx(SPREADSHEET.replace("contacts\n", "contacts,Annual Revenue\n", 1)))
    runner = CliRunner(env={"DATABASE_URL": database_url})
    done = runner.invoke(cli, ["import", str(path), "--by", ADMIN])
    assert done.exit_code == 0, done.output
    assert "3 created" in done.stdout and "columns not read (1): “Annual Revenue”" in done.stderr

    semicolons = io.StringIO()
    csv.writer(semicolons, delimiter=";").writerows(csv.reader(io.StringIO(SPREADSHEET.replace(
        "Initech,longtail", "Initech,key"))))
    semicolons = semicolons.getvalue()
    assert '"Li Wei:decision_maker:4; Ann Lee:user:2"' in semicolons
    again = runner.invoke(cli, ["import", "-", "--by", ADMIN], input=semicolons.encode("utf-8-sig"))
    assert again.exit_code == 0, again.output
    assert "1 updated, 2 unchanged" in again.stdout
    assert customer(engine, "Initech")[0].tier == "key"

    refused = runner.invoke(cli, ["import", "-"], input="name\nSão Paulo Ltda\n".encode("cp1252"))
    assert refused.exit_code == 1 and "byte 0xE3 on line 2 is not UTF-8" in refused.stderr
    assert "Save it from the spreadsheet as “CSV UTF-8”" in refused.stderr


# -- what HubSpot, Salesforce and Pipedrive export ----------------------------------------------------------

HUBSPOT_COMPANIES = (
    '"Record ID","Company name","Company owner","Email of owner","Lifecycle Stage","Phone Number",'
    '"Company Domain Name","Ideal Customer Profile Tier","Create Date"\r\n'
    '"5001","Acme Corp","Alice Adams","alice@rapport.example","Customer","+1 415 555 0100","acme.example",'
    '"Tier 1","2025-01-02 10:00"\r\n'
    '"5002","Globex","Bob Brown","BOB@rapport.example","Opportunity","","globex.example","",""\r\n'
    '\r\n'
    '"5003","Initech","","","Evangelist","","initech.example","Tier 3",""\r\n'
    '"5004","Umbrella","","","Other","","","",""\r\n'
)


def test_a_hubspot_company_export_is_read_by_its_column_names_and_values(engine, clock, team):
    with session_scope(engine) as session:
        session.add(SlackUser(workspace_id=HOME_TEAM, user_id="U0ALICE", email="alice@rapport.example",
                              fetched_at=clock.now()))
    report = imported_bytes(engine, clock, "\ufeff".encode() + HUBSPOT_COMPANIES.encode())
    assert (report.created, report.bad) == (4, [])
    assert report.mapping.sources[0] == "HubSpot"
    assert report.ignored_columns == ["Record ID", "Company owner", "Phone Number", "Company Domain Name",
                                      "Create Date"]
    acme = customer(engine, "Acme Corp")[0]
    assert (acme.tier, acme.stage, acme.owner_id) == ("key", "active", "U0ALICE")
    globex = customer(engine, "Globex")[0]
    assert (globex.tier, globex.stage, globex.owner_id) == ("general", "converting", "U0BOB")
    assert (customer(engine, "Initech")[0].tier, customer(engine, "Initech")[0].stage) == ("longtail", "expanding")
    assert customer(engine, "Umbrella")[0].stage == "prospect"  # “Other” says nothing: the default
    assert report.mapping.translations() == [
        "stage: “Customer” → active (1 row)", "stage: “Evangelist” → expanding (1 row)",
        "stage: “Opportunity” → converting (1 row)", "stage: “Other” → (empty) (1 row)",
        "tier: “Tier 1” → key (1 row)", "tier: “Tier 3” → longtail (1 row)"]

    again = imported_bytes(engine, clock, HUBSPOT_COMPANIES.encode())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


def test_salesforce_and_pipedrive_accounts_map_their_type_and_label_to_stages(engine, clock, team):
    salesforce = ("Account ID,Account Name,Account Owner,Type,Website,Billing Country\n"
                  "001A,Acme Corp,Alice Adams,Customer - Direct,acme.example,US\n"
                  "001B,Globex,Bob Brown,Prospect,,DE\n"
                  "001C,Hooli,,Former Customer,,\n")
    report = imported_bytes(engine, clock, salesforce.encode(), workspace_id="T0SF")
    assert report.bad == [] and report.mapping.sources == ["Salesforce"]
    assert report.mapping.lines()[0] == ("reading companies from Salesforce column names (header on line 1): "
                                        "Account Name → name; Type → stage")
    pipedrive = ("Organization - ID;Organization - Name;Organization - Owner;Organization - Label\n"
                 "11;Acme Corp;Alice Adams;Customer\n12;Globex;Bob Brown;Hot lead\n13;Hooli;;Cold lead\n")
    report = imported_bytes(engine, clock, pipedrive.encode(), workspace_id="T0PD")
    assert report.bad == [] and report.mapping.sources == ["Pipedrive"]
    with session_scope(engine) as session:
        stages = {(c.workspace_id, c.name): c.stage for c in session.exec(select(Customer))}
    assert stages == {("T0SF", "Acme Corp"): "active", ("T0SF", "Globex"): "prospect", ("T0SF", "Hooli"): "churned",
                      ("T0PD", "Acme Corp"): "active", ("T0PD", "Globex"): "converting", ("T0PD", "Hooli"): "prospect"}


def test_map_overrides_the_known_names_from_the_command_line_or_a_saved_file(engine, database_url, tmp_path,
                                                                              team):
    path = tmp_path / "accounts.csv"
    path.write_text("Kunde,Stufe,Account Name,Betreuer\nAcme Corp,key,Acme (old),bob@rapport.example\n",
                    encoding="utf-8")
    runner = CliRunner(env={"DATABASE_URL": database_url})
    saved = tmp_path / "mapping.txt"
    saved.write_text("# our German spreadsheet\nKunde=name\nStufe=tier\nAccount Name=\n", encoding="utf-8")
    done = runner.invoke(cli, ["import", "companies", str(path), "--map-file", str(saved),
                               "--map", "Betreuer=owner"])
    assert done.exit_code == 0, done.output
    assert ("reading companies from columns (header on line 1): Kunde → name (--map); Stufe → tier (--map); "
            "Betreuer → owner (--map)") in done.stderr
    assert "columns not read (1): “Account Name”" in done.stderr
    assert done.stderr.index("reading companies") < done.stderr.index("imported") if "imported" in done.stderr \
        else True
    acme = customer(engine, "Acme Corp")[0]
    assert (acme.tier, acme.owner_id) == ("key", "U0BOB")

    wrong = runner.invoke(cli, ["import", str(path), "--map", "Kunde=revenue"])
    assert wrong.exit_code == 2 and "“revenue” in “Kunde=revenue” is not a field of companies" in wrong.stderr
    missing = runner.invoke(cli, ["import", str(path), "--map", "Customer=name"])
    assert missing.exit_code == 1 and "--map names a column “customer” that the header" in missing.stderr
    unnamed = runner.invoke(cli, ["import", str(path)])
    assert unnamed.exit_code == 0 and customer(engine, "Acme (old)")[0].tier == "general"  # Account Name: the name
    assert runner.invoke(cli, ["import", "deals", str(path)]).exit_code == 2


def test_touches_from_an_activity_export_are_logged_with_their_dates_and_move_the_revisit(engine, clock, team):
    from bot.services.crm_import import RowsRefused, import_touches
    from models import Interaction

    imported(engine, clock, SPREADSHEET)  # Acme (key, Li Wei in its chain), Globex, Initech
    day = clock.now()
    hubspot = (
        "Activity date,Activity type,Associated Company,Associated Contact,Call notes,Record ID\r\n"
        f"{(day - timedelta(days=3)):%Y-%m-%d %H:%M},Logged call,Acme Corp,Li Wei,Talked renewal,901\r\n"
        f"{(day - timedelta(days=10)):%Y-%m-%d},Meeting,ACME corp,,Kick-off,902\r\n"
        "\r\n"
        f"{(day - timedelta(days=1)):%m/%d/%Y},Note,Globex,Somebody New,Sent the deck,903\r\n"
    )

    def touches(text, **options):
        with session_scope(engine) as session:
            workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
            return import_touches(session, workspace=workspace, rows=io.BytesIO(text.encode()), by=ADMIN,
                                  now=clock.now(), **options)

    report = touches(hubspot)
    assert (report.rows, report.added, report.unchanged, report.bad) == (3, 3, 0, [])
    assert report.mapping.sources[0] == "HubSpot" and report.mapping.ignored == ["Record ID"]
    acme, chain = customer(engine, "Acme Corp")
    assert acme.last_touch_at == day - timedelta(days=3)  # the latest of its touches, not the import's time
    assert acme.revisit_due_at == day - timedelta(days=3) + timedelta(days=14)
    with session_scope(engine) as session:
        logged = {(t.kind, t.summary): t for t in session.exec(select(Interaction))}
        assert set(logged) == {("call", "Talked renewal"), ("meeting", "Kick-off"), ("note", "Sent the deck")}
        assert logged[("call", "Talked renewal")].contact_id == chain["Li Wei"].id
        assert logged[("note", "Sent the deck")].contact_id is None  # not in Globex's chain: the touch, no contact
        assert logged[("call", "Talked renewal")].by_user == ADMIN

    before = customer(engine, "Acme Corp")[0]
    again = touches(hubspot)
    assert (again.added, again.unchanged) == (0, 3)
    with session_scope(engine) as session:
        assert len(session.exec(select(Interaction)).all()) == 3
    assert customer(engine, "Acme Corp")[0].updated_at == before.updated_at

    salesforce = ("Subject,Date,Company / Account,Contact,Task Type,Full Comments\n"
                  "Follow-up,11/20/2026,Nowhere Ltd,,Call,Left a message\n"
                  "Demo,2099-01-01,Initech,,Meeting,Showed the product\n"
                  "Check-in,2026-11-20,Initech,,Call,\n")
    with pytest.raises(RowsRefused) as refused:
        touches(salesforce)
    assert refused.value.report.bad == [
        (2, "no customer “Nowhere Ltd”; import the companies first."),
        (3, "a touch cannot be in the future."),
        (4, "the summary is empty."),
    ]
    with session_scope(engine) as session:
        assert len(session.exec(select(Interaction)).all()) == 3  # nothing written
    skipped = touches(salesforce.replace("Nowhere Ltd", "Initech").replace("2099-01-01", "2026-11-01"),
                      skip_bad=True)
    assert (skipped.added, skipped.bad) == (2, [(4, "the summary is empty.")])
    assert skipped.mapping.sources == ["Salesforce"]


def test_the_cli_guesses_a_pipedrive_activities_file_and_imports_its_touches(engine, database_url, tmp_path, team):
    runner = CliRunner(env={"DATABASE_URL": database_url})
    companies = tmp_path / "organizations.csv"
    companies.write_text("Organization - ID,Organization - Name,Organization - Label\n1,Acme Corp,Customer\n",
                         encoding="utf-8")
    assert runner.invoke(cli, ["import", str(companies), "--by", ADMIN]).exit_code == 0
    activities = tmp_path / "activities.csv"
    activities.write_text(
        "Activity - Subject;Activity - Type;Activity - Due date;Activity - Organization;Activity - Note\n"
        "Lunch with Li;Lunch;2026-11-20;Acme Corp;Talked about the renewal\n", encoding="utf-8")
    done = runner.invoke(cli, ["import", str(activities), "--by", ADMIN])
    assert done.exit_code == 0, done.output
    assert "reading touches from Pipedrive" in done.stderr and "Activity - Note → summary" in done.stderr
    assert "1 touches added, 0 already there" in done.stdout  # (“touches” as the command names them)
    assert "translated kind: “Lunch” → meeting (1 row)" in done.stderr
    acme = customer(engine, "Acme Corp")[0]
    assert acme.stage == "active" and acme.last_touch_at.date().isoformat() == "2026-11-20"
    again = runner.invoke(cli, ["import", "touches", str(activities), "--by", ADMIN])
    assert again.exit_code == 0 and "0 touches added, 1 already there" in again.stdout


def test_contacts_from_hubspot_salesforce_and_pipedrive_join_their_customers_decision_chains(engine, clock, team):
    from bot.services.crm_import import RowsRefused, import_contacts

    imported(engine, clock, SPREADSHEET)  # Acme (Li Wei decision maker 4, Ann Lee), Globex, Initech (Peter)

    def contacts(text, **options):
        with session_scope(engine) as session:
            workspace = ensure_workspace(session, workspace_id=HOME_TEAM, now=clock.now())
            return import_contacts(session, workspace=workspace, rows=io.BytesIO(text.encode("utf-8-sig")),
                                   by=ADMIN, now=clock.now(), **options)

    hubspot = ("Record ID,First Name,Last Name,Email,Company Name,Job Title,Buying Role,Contact owner\r\n"
               "1,Li,Wei,li@acme.example,Acme Corp,CTO,Decision Maker,Alice Adams\r\n"
               "2,Sam,Stone,sam@acme.example,acme corp,Buyer,Budget Holder,\r\n"
               ",,,,,,,\r\n"
               "3,Gina,Gold,gina@globex.example,Globex,,End User,\r\n")
    clock.advance(timedelta(hours=1))
    report = contacts(hubspot)
    assert (report.rows, report.added, report.updated, report.unchanged, report.bad) == (3, 2, 0, 1, [])  # Li Wei is there
    assert report.mapping.sources[0] == "HubSpot"
    assert "Email" in report.mapping.ignored and "Job Title" in report.mapping.ignored
    _, acme_chain = customer(engine, "Acme Corp")
    assert {name: (c.role, c.level) for name, c in acme_chain.items()} == {
        "Li Wei": ("decision_maker", 4), "Ann Lee": ("user", 2), "Sam Stone": ("decision_maker", 1)}
    assert customer(engine, "Globex")[1]["Gina Gold"].role == "user"
    with session_scope(engine) as session:  # a new person's level goes into history, as /crm contact does
        joined = session.exec(select(RelationshipChange).where(RelationshipChange.at == clock.now())).all()
        assert sorted((c.field, c.from_value, c.to_value) for c in joined) == [("level", None, "1")] * 2
    before = counts(engine)
    assert contacts(hubspot).unchanged == 3 and counts(engine) == before  # re-importing changes nothing

    salesforce = ("First Name,Last Name,Account Name,Title,Email,Contact Role\n"
                  "Peter,Gibbons,Initech,Engineer,peter@initech.example,Technical Buyer\n"
                  "Bill,Lumbergh,Initech Holdings,VP,bill@initech.example,Economic Buyer\n"
                  ",,Initech,,nobody@initech.example,\n")
    with pytest.raises(RowsRefused) as refused:
        contacts(salesforce)
    assert refused.value.report.bad == [(3, "no customer “Initech Holdings”; import the companies first."),
                                        (4, "the contact's name is empty.")]
    assert counts(engine) == before
    skipped = contacts(salesforce, skip_bad=True)
    assert (skipped.updated, skipped.bad[0][0]) == (1, 3)
    assert customer(engine, "Initech")[1]["Peter Gibbons"].role == "evaluator"

    pipedrive = "Person - Name;Person - Organization;Person - Email\nHank Hill;Globex;hank@globex.example\n"
    report = contacts(pipedrive)
    assert report.added == 1 and report.mapping.sources == ["Pipedrive"]
    assert customer(engine, "Globex")[1]["Hank Hill"].level == 1


def test_the_cli_tells_a_contacts_export_from_a_companies_export(engine, database_url, tmp_path, team):
    runner = CliRunner(env={"DATABASE_URL": database_url})
    companies = tmp_path / "companies.csv"
    companies.write_bytes(HUBSPOT_COMPANIES.encode())
    people = tmp_path / "contacts.csv"
    people.write_text("First Name,Last Name,Email,Company Name,Create Date\nLi,Wei,li@acme.example,Acme Corp,"
                      "2026-01-01\n", encoding="utf-8")
    first = runner.invoke(cli, ["import", str(companies), "--by", ADMIN, "--map", "Email of owner="])
    assert first.exit_code == 0 and "reading companies from HubSpot" in first.stderr, first.output
    done = runner.invoke(cli, ["import", str(people), "--by", ADMIN])
    assert done.exit_code == 0, done.output
    assert "reading contacts from HubSpot column names" in done.stderr
    assert "1 contacts added, 0 updated, 0 already there" in done.stdout
    assert "Li Wei" in customer(engine, "Acme Corp")[1]


def test_a_dry_run_reads_everything_reports_what_it_would_do_and_writes_nothing(engine, database_url, tmp_path):
    runner = CliRunner(env={"DATABASE_URL": database_url})
    companies = tmp_path / "companies.csv"
    companies.write_bytes(HUBSPOT_COMPANIES.replace('"Tier 3"', '"Platinum"').encode())
    dry = runner.invoke(cli, ["import", str(companies), "--dry-run", "--map", "Email of owner="])
    assert dry.exit_code == 0, dry.output
    assert "reading companies from HubSpot column names" in dry.stderr  # the mapping, before anything else
    assert "line 5: tier “Platinum” is not a tier." in dry.stderr  # (line 4 is blank)
    assert ("dry run: 4 rows read; a run would write 3 created, 0 updated, 0 unchanged; contacts 0 added, "
            "0 updated; 1 bad row skipped; nothing was written") in dry.stdout
    assert "a run without --skip-bad would refuse the file (1 bad row)" in dry.stderr
    assert counts(engine) == (0, 0, 0)
    with session_scope(engine) as session:  # not even the workspace it would import into
        from models import Workspace

        assert session.exec(select(Workspace)).all() == []

    done = runner.invoke(cli, ["import", str(companies), "--skip-bad", "--map", "Email of owner="])
    assert done.exit_code == 0 and "3 created" in done.stdout
    touches = tmp_path / "calls.csv"
    touches.write_text("Activity date,Activity type,Associated Company,Call notes\n2026-11-20,Call,Acme Corp,Hi\n",
                       encoding="utf-8")
    dry = runner.invoke(cli, ["import", str(touches), "--dry-run"])
    assert dry.exit_code == 0 and "a run would write 1 touches added, 0 already there" in dry.stdout
    assert customer(engine, "Acme Corp")[0].last_touch_at is None


# -- a team switching tools: the three files each CRM exports (tests/exports/<tool>/) ------------------------------

DATA = __import__("pathlib").Path(__file__).parent / "exports"  # (not data/: .gitignore keeps data/ out)
TRIOS = {
    "hubspot": (("companies.csv", "contacts.csv", "calls.csv"),
                {"Acme Corp": ("key", "active"), "Globex": ("general", "converting"), "Hooli": ("general", "expanding")},
                {"Li Wei": "decision_maker", "Ann Lee": "user"}),
    "salesforce": (("accounts.csv", "contacts.csv", "tasks.csv"),
                   {"Acme Corp": ("general", "active"), "Globex": ("general", "prospect"),
                    "Hooli": ("general", "churned")},
                   {"Li Wei": "decision_maker", "Ann Lee": "user"}),
    "pipedrive": (("organizations.csv", "persons.csv", "activities.csv"),
                  {"Acme Corp": ("general", "active"), "Globex": ("general", "converting"),
                   "Hooli": ("general", "prospect")},
                  {"Li Wei": "influencer", "Ann Lee": "influencer"}),
}


@pytest.mark.parametrize("tool", sorted(TRIOS))
def test_a_crm_export_trio_imports_into_customers_chains_and_touches_and_again_changes_nothing(
        tool, engine, database_url, fake_slack):
    from models import Interaction

    files, stages, roles = TRIOS[tool]
    paths = [str(DATA / tool / name) for name in files]
    fake_slack.add_user("U0DANA", name="dana", team_id=HOME_TEAM, email="dana@rapport.example")
    env = {"DATABASE_URL": database_url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake_slack.api_url}
    runner = CliRunner(env=env)

    dry = runner.invoke(cli, ["import", paths[0], "--dry-run", "--by", ADMIN])
    assert dry.exit_code == 0 and "a run would write 3 created" in dry.stdout, dry.output
    assert counts(engine) == (0, 0, 0)
    asked_by_dry_run = len(fake_slack.calls("users.lookupByEmail"))  # (what it learnt was rolled back too)

    results = [runner.invoke(cli, ["import", path, "--skip-bad", "--by", ADMIN]) for path in paths]
    assert [r.exit_code for r in results] == [0, 0, 0], [r.output for r in results]
    companies, contacts, touches = results
    assert "3 created, 0 updated, 0 unchanged" in companies.stdout and "2 bad rows skipped" in companies.stdout
    assert "owner “gone@rapport.example”: no one in this Slack workspace has this e-mail" in companies.stderr
    assert "same name as line 2 (“Acme Corp”)" in companies.stderr
    assert "3 contacts added, 0 updated, 0 already there; 2 bad rows skipped" in contacts.stdout
    assert "no customer “Initech”; import the companies first." in contacts.stderr  # its owner was refused
    assert "the contact's name is empty." in contacts.stderr
    assert "3 touches added, 0 already there; 1 bad row skipped" in touches.stdout
    # dana's e-mail (in any case) and the unknown one: each asked of Slack once
    assert sorted(call.args["email"] for call in fake_slack.calls("users.lookupByEmail")[asked_by_dry_run:]) == [
        "dana@rapport.example", "gone@rapport.example"]

    with session_scope(engine) as session:
        found = {c.name: c for c in session.exec(select(Customer))}
        assert {name: (c.tier, c.stage) for name, c in found.items()} == stages
        assert (found["Acme Corp"].owner_id, found["Globex"].owner_id, found["Hooli"].owner_id) == (
            "U0DANA", "U0DANA", None)
        assert found["Acme Corp"].last_touch_at.date().isoformat() == "2026-11-10"  # its latest touch
        cadence = 14 if found["Acme Corp"].tier == "key" else 45
        assert found["Acme Corp"].revisit_due_at == found["Acme Corp"].last_touch_at + timedelta(days=cadence)
        logged = session.exec(select(Interaction).where(Interaction.customer_id == found["Acme Corp"].id)).all()
        assert sorted(t.kind for t in logged) == ["call", "meeting"]
    _, chain = customer(engine, "Acme Corp")
    assert {name: c.role for name, c in chain.items()} == roles
    assert "Gina Gold" in customer(engine, "Globex")[1]

    before = counts(engine)
    again = [runner.invoke(cli, ["import", path, "--skip-bad", "--by", ADMIN]) for path in paths]
    assert "0 created, 0 updated, 3 unchanged" in again[0].stdout
    assert "0 contacts added, 0 updated, 3 already there" in again[1].stdout
    assert "0 touches added, 3 already there" in again[2].stdout
    assert counts(engine) == before
