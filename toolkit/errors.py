"""Errors a user can act on: each names the file, field, table or row at fault."""


class StudyError(Exception):
    """A study cannot run as declared (bad study file, bad input data, infeasible budget)."""


class _Interrupt:
    requested = False


def request_interrupt(signum: int = 0, frame: object = None) -> None:
    """The CLI's handler for Ctrl-C and SIGTERM: remember the request, then raise
    KeyboardInterrupt. Python drops an exception raised while a ``__del__`` runs (it prints
    "Exception ignored in ..."), so the raise alone can be lost; ``raise_if_interrupted`` before
    a commit makes sure a run asked to stop never lands."""
    _Interrupt.requested = True
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if an interrupt was requested, even one whose raise was dropped."""
    if _Interrupt.requested:
        raise KeyboardInterrupt
