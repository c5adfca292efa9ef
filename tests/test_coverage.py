"""Coverage (普遍客户关系): who on our side touched whom in the last 90 days; single-threaded accounts and the named
risks of the chain, on hand-computed touch sets, on the card and in health's relationship component."""

from datetime import timedelta

from bot.services.coverage import compute
from tests.support import text_of

CHAIN = [(1, "Li Wei", "decision_maker", 4), (2, "Zhang San", "influencer", 3), (3, "Wang Fang", "user", 2)]


def test_one_contact_with_eighty_percent_of_the_named_touches_is_single_threaded():
    # 8 of 10 touches naming someone are with Li Wei (two of our people): single-threaded at exactly 80%.
    found = compute([("U0ALICE", 1, 5), ("U0BOB", 1, 3), ("U0BOB", 2, 2), ("U0ALICE", None, 4)], CHAIN)
    assert found.single_threaded == "single-threaded: 8 of 10 touches with Li Wei"
    assert found.total == 14 and found.ours == ["U0ALICE", "U0BOB"] and found.risks == []
    # 7 of 10: spread enough.
    assert compute([("U0ALICE", 1, 7), ("U0BOB", 2, 3)], CHAIN).single_threaded is None


def test_only_one_of_our_people_touching_it_is_single_threaded():
    found = compute([("U0ALICE", 1, 2), ("U0ALICE", 2, 2), ("U0ALICE", 3, 2)], CHAIN)
    assert found.single_threaded == "single-threaded: all 6 touches by one of our people"
    assert compute([("U0ALICE", 1, 1), ("U0ALICE", 2, 1)], CHAIN).single_threaded is None  # too few to judge


def test_the_named_risks_of_the_chain():
    low = [(1, "Li Wei", "decision_maker", 2), (2, "Zhang San", "influencer", 3)]
    assert compute([], low).risks == ["no decision maker at level 3 or above"]
    assert compute([], low, renewal=True).risks == ["no decision maker at level 3 or above",
                                                    "no one at level 4+ on a renewal"]
    assert compute([], CHAIN, renewal=True).risks == []
    assert compute([], []).risks == []  # no chain: health says "no decision chain recorded" instead


def test_the_card_shows_our_people_by_their_contacts_and_health_says_single_threaded(slack, clock):
    slack.command("alice", 'add "Acme Corp" tier:key')
    slack.command("alice", 'contact acme "Li Wei" role:decision_maker level:4')
    slack.command("alice", 'contact acme "Zhang San" level:3')
    for _ in range(9):
        slack.command("alice", 'log acme call with:"Li Wei" Pricing')
    slack.command("bob", 'log acme meeting with:"Zhang San" Demo')
    clock.advance(timedelta(days=1))
    card = text_of(slack.command("alice", "show acme"))
    assert "*Coverage* (touches, last 90 days)\n• <@U0ALICE> — *Li Wei* 9\n• <@U0BOB> — *Zhang San* 1" in card
    assert ":warning: single-threaded: 9 of 10 touches with Li Wei" in card
    assert "single-threaded: 9 of 10 touches with Li Wei" in card.split("Health: ", 1)[1]

    # Touches older than 90 days no longer count.
    clock.advance(timedelta(days=91))
    card = text_of(slack.command("alice", "show acme"))
    assert "*Coverage*" not in card and "single-threaded" not in card
