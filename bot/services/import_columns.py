"""The columns Rapport recognises in what CRMs export, and how their values translate: the one table to extend.

Headers are compared case-, space- and punctuation-folded (`Company name`, `company_name` and `COMPANY-NAME`
are the same). A field lists its headers most telling first: when a file has several of them (HubSpot's
`Company owner`, a name, beside an owner e-mail column), the first one present is read and the others are not.
Values are compared case-folded; a value not listed goes through as written (Rapport's own words, and their
aliases such as 关键, still work), and one mapped to "" counts as empty: the field keeps its default or its value.
"""

from __future__ import annotations

# What each kind of file fills, in Rapport's own format's column order.
FIELDS = {
    "companies": ("name", "tier", "stage", "org", "owner", "channel", "contacts"),
    "contacts": ("company", "name", "first_name", "last_name", "role", "level"),
    "touches": ("company", "contact", "kind", "date", "summary"),
}
# The field without which a row means nothing.
REQUIRED = {"companies": "name", "contacts": "company", "touches": "company"}

# The source systems whose exports are recognised, as the report names them.
SOURCES = ("Rapport", "HubSpot", "Salesforce", "Pipedrive")

# kind → field → [(header, source)], most telling first.
HEADERS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "companies": {
        "name": [
            ("name", "Rapport"),
            ("Company name", "HubSpot"),  # HubSpot companies export
            ("Account Name", "Salesforce"),  # Salesforce Accounts (Data Export and reports)
            ("Organization - Name", "Pipedrive"),  # Pipedrive organizations export
            ("Organization name", "Pipedrive"),
            ("Company", "Salesforce"),
        ],
        "tier": [
            ("tier", "Rapport"),
            ("Ideal Customer Profile Tier", "HubSpot"),  # HubSpot's hs_ideal_customer_profile: Tier 1/2/3
            ("Account Tier", "Salesforce"),
            ("Organization - Tier", "Pipedrive"),
        ],
        "stage": [
            ("stage", "Rapport"),
            ("Lifecycle Stage", "HubSpot"),
            ("Type", "Salesforce"),  # the Account's Type picklist
            ("Account Type", "Salesforce"),
            ("Organization - Label", "Pipedrive"),
            ("Label", "Pipedrive"),
        ],
        "org": [("org", "Rapport"), ("org_relationship", "Rapport"), ("organization", "Rapport")],
        "owner": [
            ("owner", "Rapport"),
            ("Email of owner", "HubSpot"),
            ("Company owner email", "HubSpot"),
            ("Account Owner Email", "Salesforce"),
            ("Owner Email", "Salesforce"),
            ("Organization - Owner email", "Pipedrive"),
            # `Company owner`, `Account Owner` and `Organization - Owner` hold a person's name, which Slack
            # cannot look up: they are not read unless mapped (--map 'Company owner=owner' with e-mails in it).
        ],
        "channel": [("channel", "Rapport")],
        "contacts": [("contacts", "Rapport")],
    },
    # People in a customer's decision chain: HubSpot's contacts, Salesforce's Contacts, Pipedrive's persons.
    # (An e-mail or a job title is not kept on a contact: those columns are listed as not read.)
    "contacts": {
        "company": [
            ("company", "Rapport"), ("customer", "Rapport"), ("Associated Company", "HubSpot"),
            ("Company Name", "HubSpot"), ("Account Name", "Salesforce"), ("Person - Organization", "Pipedrive"),
            ("Organization", "Pipedrive"),
        ],
        "name": [("name", "Rapport"), ("Full Name", "Salesforce"), ("Person - Name", "Pipedrive")],
        "first_name": [("First Name", "HubSpot"), ("Person - First name", "Pipedrive")],
        "last_name": [("Last Name", "HubSpot"), ("Person - Last name", "Pipedrive")],
        "role": [("role", "Rapport"), ("Buying Role", "HubSpot"), ("Contact Role", "Salesforce"),
                 ("Role", "Salesforce")],
        "level": [("level", "Rapport"), ("relationship level", "Rapport")],
    },
    # Calls, meetings, notes: HubSpot's activity exports, Salesforce's Activities/Tasks reports, Pipedrive's
    # activities export.
    "touches": {
        "company": [
            ("company", "Rapport"), ("customer", "Rapport"),
            ("Associated Company", "HubSpot"), ("Company name", "HubSpot"),
            ("Company / Account", "Salesforce"), ("Account Name", "Salesforce"), ("Account", "Salesforce"),
            ("Activity - Organization", "Pipedrive"), ("Organization", "Pipedrive"),
        ],
        "contact": [
            ("contact", "Rapport"), ("Associated Contact", "HubSpot"), ("Contact", "Salesforce"),
            ("Activity - Contact person", "Pipedrive"), ("Contact person", "Pipedrive"),
        ],
        "kind": [
            ("kind", "Rapport"), ("Activity type", "HubSpot"), ("Engagement type", "HubSpot"),
            ("Task Type", "Salesforce"), ("Activity - Type", "Pipedrive"), ("Type", "Salesforce"),
        ],
        "date": [
            ("date", "Rapport"), ("at", "Rapport"), ("Activity date", "HubSpot"),
            ("Activity - Marked as done time", "Pipedrive"), ("Activity - Due date", "Pipedrive"),
            ("Date", "Salesforce"), ("Due Date", "Salesforce"), ("Create Date", "HubSpot"),
        ],
        "summary": [
            ("summary", "Rapport"), ("Call notes", "HubSpot"), ("Meeting description", "HubSpot"),
            ("Note body", "HubSpot"), ("Body", "HubSpot"), ("Activity - Note", "Pipedrive"),
            ("Full Comments", "Salesforce"), ("Comments", "Salesforce"), ("Subject", "Salesforce"),
            ("Activity - Subject", "Pipedrive"),
        ],
    },
}

# kind → field → {source value (case-folded): Rapport's value, "" for none}.
VALUES: dict[str, dict[str, dict[str, str]]] = {
    "companies": {
        "stage": {
            # HubSpot lifecycle stages, as labels and as internal values
            "subscriber": "prospect", "lead": "prospect", "marketing qualified lead": "prospect",
            "marketingqualifiedlead": "prospect", "sales qualified lead": "converting",
            "salesqualifiedlead": "converting", "opportunity": "converting", "customer": "active",
            "evangelist": "expanding", "other": "",
            # Salesforce Account Type
            "prospect": "prospect", "customer - direct": "active", "customer - channel": "active",
            "channel partner / reseller": "active", "installation partner": "active",
            "technology partner": "active", "former customer": "churned",
            # Pipedrive's default organization labels
            "hot lead": "converting", "warm lead": "prospect", "cold lead": "prospect",
        },
        "tier": {
            "tier 1": "key", "tier 2": "general", "tier 3": "longtail",  # HubSpot ICP tiers
            "tier_1": "key", "tier_2": "general", "tier_3": "longtail",
            "strategic": "key", "enterprise": "key", "mid-market": "general", "smb": "longtail",
        },
    },
    "contacts": {
        "role": {
            # HubSpot's buying roles; Salesforce's contact roles
            "decision maker": "decision_maker", "budget holder": "decision_maker", "executive sponsor":
            "decision_maker", "economic buyer": "decision_maker", "economic decision maker": "decision_maker",
            "end user": "user", "business user": "user", "technical buyer": "evaluator",
            "legal and compliance": "procurement", "blocker": "influencer", "other": "",
        },
    },
    "touches": {
        "kind": {
            "logged call": "call", "phone call": "call", "calls": "call", "meetings": "meeting", "lunch": "meeting",
            "emails": "email", "incoming email": "email", "outgoing email": "email", "notes": "note",
            "task": "note", "deadline": "note", "other": "note",
        },
    },
}
