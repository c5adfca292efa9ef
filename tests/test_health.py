"""Health arithmetic for hand-computed cases (PRODUCT.md §6): components, renormalisation, insufficient data."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.services.health import Inputs, band, compute, moved, trend

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WEIGHTS = {"engagement": 30, "satisfaction": 30, "relationship": 25, "followup": 15}


def inputs(**overrides) -> Inputs:
    base = dict(cadence_days=14, last_touch_at=NOW - timedelta(days=3), created_at=NOW - timedelta(days=400),
                org_relationship="vendor", contacts=[], answers=[], overdue_followups=0)
    return Inputs(**{**base, **overrides})


def test_a_fully_healthy_account():
    health = compute(inputs(contacts=[("decision_maker", 5, "Li Wei")], org_relationship="strategic_partner",
                            answers=[("nps", 10, "Li Wei")]), weights=WEIGHTS, now=NOW)
    assert health.score == 100
    assert health.band == "healthy"


def test_engagement_falls_linearly_to_zero_at_three_cadences():
    # 28 days with a 14-day cadence: halfway between one cadence (100) and three (0) → 50.
    health = compute(inputs(last_touch_at=NOW - timedelta(days=28)), weights={"engagement": 100}, now=NOW)
    assert health.components["engagement"].value == 50
    assert "no touch for 28 days" in health.components["engagement"].reason
    assert compute(inputs(last_touch_at=NOW - timedelta(days=42)), weights={"engagement": 100},
                   now=NOW).components["engagement"].value == 0


def test_missing_components_are_left_out_and_the_rest_renormalised():
    # engagement 100 (30), satisfaction none, relationship none, follow-ups 2 overdue → 50 (15).
    health = compute(inputs(overdue_followups=2), weights=WEIGHTS, now=NOW)
    assert health.components["satisfaction"].reason == "no survey data"
    assert health.components["relationship"].reason == "no decision chain recorded"
    # 45 of 100 weight has data: less than half → insufficient data, not a number.
    assert health.score is None and health.band == "insufficient"
    with_chain = compute(inputs(overdue_followups=2, contacts=[("decision_maker", 3, "Li Wei")]),
                         weights=WEIGHTS, now=NOW)
    # relationship = 0.7 × 50 (level 3) + 0.3 × 0 (vendor) = 35
    assert with_chain.components["relationship"].value == pytest.approx(35)
    expected = (30 * 100 + 25 * 35 + 15 * 50) / (30 + 25 + 15)
    assert with_chain.score == pytest.approx(round(expected, 1))
    assert with_chain.band == "watch"  # 66.1


def test_satisfaction_maps_nps_and_names_the_low_scores():
    health = compute(inputs(answers=[("nps", 3, "Li Wei"), ("nps", 9, None), ("nps", 10, None)]),
                     weights={"satisfaction": 100}, now=NOW)
    # NPS = (2 − 1) / 3 = +33 → mapped (33 + 100) / 2 = 66.7
    assert health.components["satisfaction"].value == pytest.approx(66.67, abs=0.01)
    assert "NPS +33 from 3 answers" in health.components["satisfaction"].reason
    assert "NPS 3 from Li Wei" in health.components["satisfaction"].reason


def test_decision_makers_weigh_most():
    low_maker = compute(inputs(contacts=[("decision_maker", 1, "A"), ("user", 5, "B")]),
                        weights={"relationship": 100}, now=NOW)
    high_maker = compute(inputs(contacts=[("decision_maker", 5, "A"), ("user", 1, "B")]),
                         weights={"relationship": 100}, now=NOW)
    assert high_maker.score > low_maker.score


def test_bands_and_trend_threshold():
    assert [band(70), band(69.9), band(40), band(39.9), band(None)] == ["healthy", "watch", "watch", "at_risk",
                                                                       "insufficient"]
    assert trend(64, 60) == "→" and trend(65, 60) == "↑" and trend(50, 60) == "↓" and trend(50, None) == "→"


def test_the_inputs_that_moved_the_score_are_named():
    before = compute(inputs(), weights=WEIGHTS, now=NOW)
    after = compute(inputs(last_touch_at=NOW - timedelta(days=32), overdue_followups=1), weights=WEIGHTS, now=NOW)
    words = moved(after, before.snapshot_components(), WEIGHTS)
    assert words[0].startswith("engagement 100 → 36")
    assert "no touch for 32 days" in words[0]
    assert any(w.startswith("follow-up discipline 100 → 75") for w in words)
