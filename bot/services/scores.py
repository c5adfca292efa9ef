"""Satisfaction arithmetic: NPS (0–10) and CSAT (1–5), as PRODUCT.md §2 defines them."""

from collections.abc import Iterable


def is_promoter(score: int) -> bool:
    return score >= 9


def is_detractor(score: int) -> bool:
    return score <= 6


def nps(scores: Iterable[int]) -> float | None:
    """%promoters − %detractors, −100…100; None without answers."""
    scores = list(scores)
    if not scores:
        return None
    promoters = sum(1 for s in scores if is_promoter(s))
    detractors = sum(1 for s in scores if is_detractor(s))
    return 100.0 * (promoters - detractors) / len(scores)


def csat(scores: Iterable[int]) -> float | None:
    """Share of 4–5 answers, 0…100; None without answers."""
    scores = list(scores)
    if not scores:
        return None
    return 100.0 * sum(1 for s in scores if s >= 4) / len(scores)


def survey_score(kind: str, scores: Iterable[int]) -> float | None:
    return nps(scores) if kind == "nps" else csat(scores)


def format_score(kind: str, value: float | None, n: int) -> str:
    if value is None:
        return f"{kind.upper()}: no answers yet"
    shown = f"{value:+.0f}" if kind == "nps" else f"{value:.0f}%"
    return f"{kind.upper()} {shown} (n={n})"
