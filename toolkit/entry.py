"""The ``stl`` command's entry point: Ctrl-C and SIGTERM are handled from the first instant.

The signal handlers go in before the command line's modules are imported (some hundreds of
milliseconds), so an interrupt while they load exits 130 with one line, like one during a run,
instead of a traceback from whichever import it landed in."""

from __future__ import annotations

import signal
import sys

from toolkit.errors import interrupt_requested, request_interrupt

INTERRUPTED = 130
"""The exit status of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT)."""


def exit_interrupted(message: str) -> None:
    """Say ``message`` and leave with 130 at once: an interrupt that broke into an import can
    leave an extension module half-initialised, and the interpreter's finalisation would then
    crash (SIGABRT, "PyThreadState_Get: ... GIL"); nothing is left to write."""
    import os

    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)
    os._exit(INTERRUPTED)


def main() -> None:
    signal.signal(signal.SIGINT, request_interrupt)
    signal.signal(signal.SIGTERM, request_interrupt)
    try:
        from toolkit import cli
    except BaseException:
        if not interrupt_requested():  # an interrupt can break an import in any way
            raise
        exit_interrupted("interrupted: nothing was written")
    cli.main()


__all__ = ["INTERRUPTED", "exit_interrupted", "main"]
