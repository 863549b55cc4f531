"""Benchmarks: each module's ``run()`` returns rows (dicts) and ``print_table`` prints them.

Speed targets are checked here, as ratios against a reference measured in the same run, never
in timed tests (these machines are noisy).
"""

from __future__ import annotations

import resource
from collections.abc import Sequence


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _format(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e7:
            return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return f"{value:.3e}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(rows: Sequence[dict], file=None) -> None:
    """Print rows as an aligned plain-text table (columns from the first row)."""
    if not rows:
        print("(no rows)", file=file)
        return
    columns = list(rows[0])
    cells = [[_format(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for r in cells:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)), file=file)
