"""Numbers as people read them: costs with significant digits in their unit, never 0.00 for a
dollar amount of $0.00126, and a dash for an undefined value. Shared by the report and the CLI.
"""

from __future__ import annotations

import math

DASH = "\u2013"


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, in plain notation, trailing zeros dropped
    (0.00126, 2.15, 16, 1,240)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else DASH
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_cost(value: float | None, unit: str) -> str:
    """A cost in its unit: ``$0.00126`` (usd), ``2.15`` (samples), ``1,240`` (tokens)."""
    if value is None or not math.isfinite(value):
        return DASH
    if unit == "usd":
        sign = "-" if value < 0 else ""
        return f"{sign}${significant(abs(value))}"
    if unit == "tokens" and abs(value) >= 1000:
        return f"{value:,.0f}"
    return significant(value)


def size_text(n_bytes: float) -> str:
    """Bytes in the largest binary unit that keeps a number of at least 1: ``740 MiB``,
    ``3.65 GiB``, three significant digits."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n_bytes) >= scale:
            return f"{significant(n_bytes / scale)} {unit}"
    return f"{significant(n_bytes)} B"


def budget_label(value: float, unit: str) -> str:
    """``B = $0.0005``, ``B = 2 samples``, ``B = 1,200 tokens`` (per question)."""
    if unit == "usd":
        return f"B = {format_cost(value, unit)}"
    return f"B = {format_cost(value, unit)} {unit}"


def points(value: float | None, digits: int = 1) -> str:
    """An accuracy difference in percentage points, signed: ``+1.2``."""
    if value is None or not math.isfinite(value):
        return DASH
    return _no_negative_zero(f"{100 * value:+.{digits}f}", "+")


def _no_negative_zero(text: str, sign: str = "") -> str:
    """A number that rounds to zero prints without a minus sign (``-0.0%`` reads as a loss)."""
    if text.startswith("-") and not any(c in "123456789" for c in text):
        return sign + text[1:]
    return text


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage: ``78.3%``."""
    if value is None or not math.isfinite(value):
        return DASH
    return _no_negative_zero(f"{100 * value:.{digits}f}%")


def headline_text(rows: list[dict], unit: str) -> str:
    """The per-budget ranking (``bi.headline_rows``) as plain text: per budget, every policy at
    matched realised spend, its gain over best_fixed with the 95% interval and verdict, and the
    realised cost of its own B-priced allocation, flagged when over budget."""
    lines = []
    budget = None
    for row in rows:
        if row["budget"] != budget:
            budget = row["budget"]
            note = "" if row["binding"] else "  (does not bind: more compute buys nothing here)"
            lines.append(f"{budget_label(budget, unit)} per question{note}")
            lines.append(
                f"  {'#':>2}  {'policy':<22} {'accuracy':>8}  {'gain vs best_fixed [95% CI]':<30}"
                f" {'verdict':<13} {'cost':>10}"
            )
        gain = row["gain_vs_best_fixed"]
        interval = (
            ""
            if gain is None or row["gain_ci_low"] is None
            else f" [{points(row['gain_ci_low'], 2)}, {points(row['gain_ci_high'], 2)}]"
        )
        flag = "" if row["within_budget"] else " over budget"
        lines.append(
            f"  {row['rank']:>2}  {row['policy']:<22} {percent(row['matched_accuracy']):>8}  "
            f"{(points(gain, 2) + ' pts' + interval) if gain is not None else DASH:<30} "
            f"{row['verdict']:<13} {format_cost(row['cost'], unit):>10}{flag}"
        )
    return "\n".join(lines)


__all__ = [
    "headline_text",
    "DASH",
    "budget_label",
    "format_cost",
    "percent",
    "points",
    "significant",
]
