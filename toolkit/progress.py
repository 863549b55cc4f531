"""Progress inside a long stage: the callback a stage is given (``toolkit.pipeline.Progress``)
and the counter that tells it each step (learn: each CatBoost fit; evaluate: each policy's curve
and each policy at each budget)."""

from __future__ import annotations

from collections.abc import Callable

Step = Callable[[int, int], None]
"""Told (steps done, steps in all)."""


class Steps:
    """Counts a stage's steps and tells ``step`` (if any) after each."""

    def __init__(self, step: Step | None, total: int = 0) -> None:
        self.step, self.total, self.done = step, total, 0

    def advance(self) -> None:
        self.done += 1
        if self.step is not None:
            self.step(self.done, self.total)


__all__ = ["Step", "Steps"]
