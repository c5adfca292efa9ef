"""Reading the product's words from what people type: `key`, `Key`, `4`, `supportive`, `支持`, unambiguous prefixes."""

from enum import Enum

from bot.errors import BadInput
from models.enums import ContactRole, OrgRelationship, PartnerKind, RelationshipLevel, Stage, Tier, TouchKind

# Words people use besides the canonical names (the seed articles' Chinese terms included).
ALIASES: dict[type[Enum], dict[str, str]] = {
    Tier: {"关键": "key", "关键客户": "key", "普遍": "general", "普遍客户": "general", "长尾": "longtail",
           "long-tail": "longtail", "long_tail": "longtail", "strategic": "key"},
    Stage: {"获取": "prospect", "转化": "converting", "留存": "active", "价值挖掘": "expanding", "流失": "churned",
            "lost": "churned", "customer": "active", "won": "active"},
    RelationshipLevel: {"接触": "contact", "接受": "acceptance", "有好感": "favorable", "好感": "favorable",
                        "支持": "supportive", "支持不排他": "supportive", "排他": "exclusive",
                        "支持并排他": "exclusive", "favourable": "favorable"},
    OrgRelationship: {"参与者": "vendor", "供应商": "supplier", "关键供应商": "key_supplier",
                      "战略合作伙伴": "strategic_partner", "partner": "strategic_partner",
                      "key-supplier": "key_supplier", "strategic": "strategic_partner",
                      "strategic-partner": "strategic_partner"},
    ContactRole: {"dm": "decision_maker", "decision-maker": "decision_maker", "decider": "decision_maker",
                  "决策者": "decision_maker", "影响者": "influencer", "评估者": "evaluator", "使用者": "user",
                  "采购": "procurement", "支持者": "champion", "coach": "champion"},
    PartnerKind: {"供应商": "supplier", "渠道": "channel_partner", "渠道伙伴": "channel_partner",
                  "channel": "channel_partner", "reseller": "channel_partner", "集成商": "integrator", "si": "integrator",
                  "友商": "competitor", "rival": "competitor",
                  "合作伙伴": "partner"},
    TouchKind: {"phone": "call", "mail": "email", "msg": "message", "dm": "message", "lunch": "meeting",
                "onsite": "visit", "拜访": "visit", "电话": "call", "会议": "meeting"},
}

WHAT = {
    Tier: "tier",
    Stage: "stage",
    RelationshipLevel: "relationship level",
    OrgRelationship: "org relationship",
    ContactRole: "role",
    TouchKind: "kind of touch",
    PartnerKind: "kind of partner",
}


def choices(enum: type[Enum]) -> str:
    if enum is RelationshipLevel:
        return ", ".join(f"{level.value} {level.name}" for level in RelationshipLevel)
    return ", ".join(member.value for member in enum)


def parse_choice(enum: type[Enum], text: str):
    """The enum member a word names (exact, alias, number for levels, or unambiguous prefix); else BadInput."""
    word = text.strip().lower().replace(" ", "_")
    what = WHAT[enum]
    if enum is RelationshipLevel and word.isdigit():
        number = int(word)
        if 1 <= number <= 5:
            return RelationshipLevel(number)
        raise BadInput(f"A relationship level is 1 to 5, not {number}.", hint=f"Levels: {choices(enum)}.")
    word = ALIASES.get(enum, {}).get(word, word)
    names = {member.name: member for member in enum}
    if word in names:
        return names[word]
    matches = [member for name, member in names.items() if name.startswith(word)] if word else []
    if len(matches) == 1:
        return matches[0]
    article = "an" if what[0] in "aeiou" else "a"
    raise BadInput(f"“{text}” is not {article} {what}.", hint=f"Choose one of: {choices(enum)}.")


def level_label(level: int) -> str:
    """`supportive (4/5)`, as the card shows it."""
    return f"{RelationshipLevel(level).name} ({level}/5)"


def human(value: str) -> str:
    """`decision_maker` → `decision maker` for display."""
    return value.replace("_", " ")
