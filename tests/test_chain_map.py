"""The decision chain as a map: reports-to drawn as a tree with level and stance, loops refused, competitors in
the ecosystem with the people who lean to them, and a person who left replaced by a successor at level 1."""

from sqlmodel import select

from models import Contact, RelationshipChange
from tests.support import text_of
from tests.test_bad_input import snapshot

TWELVE = [  # (name, role, level, reports to)
    ("Li Wei", "decision_maker", 4, None), ("Zhang San", "influencer", 3, "Li Wei"),
    ("Wang Fang", "evaluator", 2, "Zhang San"), ("Chen Jie", "user", 1, "Wang Fang"),
    ("Liu Yang", "procurement", 2, "Li Wei"), ("Zhao Lei", "champion", 5, "Liu Yang"),
    ("Sun Li", "user", 1, "Zhao Lei"), ("Zhou Min", "influencer", 3, "Li Wei"), ("Wu Gang", "evaluator", 2, "Zhou Min"),
    ("Xu Jing", "user", 1, "Wu Gang"), ("Hu Bo", "user", 2, "Zhou Min"), ("Guo Mei", "influencer", 3, None),
]


def test_a_twelve_person_chain_is_drawn_as_a_tree_and_loops_are_refused(slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    for name, role, level, _boss in TWELVE:
        slack.command("alice", f'contact acme "{name}" role:{role} level:{level}')
    for name, _role, _level, boss in TWELVE:
        if boss:
            slack.command("alice", f'contact acme "{name}" reports:"{boss}"')
    slack.command("alice", 'contact acme "Zhang San" stance:blocker')
    card = slack.command("alice", "show acme")
    chain = text_of(card).split("*Decision chain*\n", 1)[1].split("*Last touches*", 1)[0]
    lines = [line for line in chain.splitlines() if line.strip()]
    depth = {line.split("*")[1]: line.count("\u2003\u2003") for line in lines if "*" in line}
    assert depth == {"Li Wei": 0, "Zhang San": 1, "Wang Fang": 2, "Chen Jie": 3, "Liu Yang": 1, "Zhao Lei": 2,
                     "Sun Li": 3, "Zhou Min": 1, "Wu Gang": 2, "Xu Jing": 3, "Hu Bo": 2, "Guo Mei": 0}
    order = [line.split("*")[1] for line in lines if "*" in line]
    assert order.index("Zhang San") < order.index("Wang Fang") < order.index("Liu Yang") < order.index("Guo Mei")
    assert "*Zhang San*, influencer, favorable (3/5) · :red_circle: blocker" in chain

    before = snapshot(slack)
    answer = text_of(slack.command("alice", 'contact acme "Li Wei" reports:"Li Wei"'))
    assert "cannot report to themselves" in answer
    answer = text_of(slack.command("alice", 'contact acme "Li Wei" reports:"Xu Jing"'))
    assert "That would make a loop: Li Wei → Xu Jing → Wu Gang → Zhou Min → Li Wei" in answer
    assert "stance" in text_of(slack.command("alice", 'contact acme "Li Wei" stance:lukewarm'))
    assert "status" in text_of(slack.command("alice", 'contact acme "Li Wei" status:retired'))
    assert snapshot(slack) == before
    history = text_of(slack.command("alice", "history acme"))
    assert "Wang Fang reports to Zhang San" in history and "Zhang San stance blocker" in history


def test_competitors_sit_in_the_ecosystem_and_people_lean_to_them(slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'add "Initrode" tier:longtail')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:3')
    answer = text_of(slack.command("alice", 'contact acme "Li Wei" leans:"Initrode"'))
    assert "not a competitor at Acme Corp yet" in answer and "/crm link" in answer
    shown = text_of(slack.command("alice", "link acme competitor Initrode"))
    assert "*Initrode* joined the ecosystem of *Acme Corp* as competitor" in shown
    card = text_of(slack.command("alice", 'contact acme "Li Wei" leans:initrode'))
    assert "*Li Wei*, decision maker, favorable (3/5) · leans to *Initrode*" in card
    assert "*Initrode* (competitor)" in card
    slack.command("alice", 'contact acme "Li Wei" leans:none')
    assert "leans to" not in text_of(slack.command("alice", "show acme")).split("*Last touches*")[0]


def test_a_person_who_left_is_replaced_by_a_successor_at_level_one_and_the_lost_level_is_kept(slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:5')
    slack.command("alice", 'contact acme "Zhang San" level:3 reports:"Li Wei"')
    card = text_of(slack.command("alice", 'contact acme "Li Wei" status:left replaced_by:"Wang Fang"'))
    assert "~Li Wei~ decision maker, was exclusive (5/5) (left; replaced by *Wang Fang*)" in card
    with slack.session() as session:
        people = {c.name: c for c in session.exec(select(Contact))}
        assert (people["Wang Fang"].level, people["Wang Fang"].role) == (1, "decision_maker")
        assert people["Zhang San"].reports_to_id == people["Wang Fang"].id  # the team moved under the successor
        status = session.exec(select(RelationshipChange).where(RelationshipChange.field == "status")).one()
        assert (status.from_value, status.to_value, status.reason) == ("active", "left", "was at level 5/5")


def test_a_thirty_person_chain_with_hostile_names_stays_within_block_kit_limits(slack):
    slack.command("alice", 'add "Acme Corp" tier:key')
    hostile = "<!channel> *bold* <@U0BOB> & ~strike~ " + "长" * 150
    names = [f"{i:02d} {hostile}"[:200] for i in range(30)]
    for index, name in enumerate(names):
        slack.command("alice", f'contact acme "{name}" level:{index % 5 + 1}')
        if index:
            slack.command("alice", f'contact acme "{name}" reports:"{names[(index - 1) // 2]}" stance:neutral')
    card = slack.command("alice", "show acme")  # check_message: Slack's schema, block counts, no pings
    assert len(card["blocks"]) <= 50
    chain = text_of(card)
    assert "&lt;!channel&gt;" in chain and "<!channel>" not in chain
    assert all(f"*{i:02d} &lt;!channel&gt;" in chain for i in range(30))  # everyone drawn, in two sections
