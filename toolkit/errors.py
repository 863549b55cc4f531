"""Errors a user can act on: each names the file, field, table or row at fault; and how
Ctrl-C and SIGTERM reach a run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class StudyError(Exception):
    """A study cannot run as declared (bad study file, bad input data, infeasible budget)."""


class _Interrupt:
    requested = False
    shielded = False
    landed: str | None = None


def request_interrupt(signum: int = 0, frame: object = None) -> None:
    """The CLI's handler for Ctrl-C and SIGTERM: remember the request, then raise
    KeyboardInterrupt. Python drops an exception raised while a ``__del__`` runs (it prints
    "Exception ignored in ..."), so the raise alone can be lost; ``raise_if_interrupted`` before
    a commit makes sure a run asked to stop never lands."""
    _Interrupt.requested = True
    if not _Interrupt.shielded:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A section no interrupt breaks into (a commit and the note that it happened): Ctrl-C
    there is remembered and raised by the next ``raise_if_interrupted``."""
    _Interrupt.shielded = True
    try:
        yield
    finally:
        _Interrupt.shielded = False


def note_landed(message: str) -> None:
    """Record that a run of this process has landed (what to say if Ctrl-C comes after)."""
    _Interrupt.landed = message


def landed_run() -> str | None:
    """What landed in this process, if anything: the message for an interrupt after it."""
    return _Interrupt.landed


def interrupt_requested() -> bool:
    """Whether Ctrl-C or SIGTERM has asked the command to stop."""
    return _Interrupt.requested


class InterruptedAfterLanding(BaseException):
    """An interrupt after the run committed (while its report was written): the run is kept,
    and the message says so. Not a KeyboardInterrupt, which the command line library would
    take for one that stopped the command before it wrote anything."""


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if an interrupt was requested, even one whose raise was dropped."""
    if _Interrupt.requested:
        raise KeyboardInterrupt
