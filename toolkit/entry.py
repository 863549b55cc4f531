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


def main() -> None:
    signal.signal(signal.SIGINT, request_interrupt)
    signal.signal(signal.SIGTERM, request_interrupt)
    try:
        from toolkit import cli
    except BaseException:
        if not interrupt_requested():  # an interrupt can break an import in any way
            raise
        print("interrupted: nothing was written", file=sys.stderr)
        sys.exit(INTERRUPTED)
    cli.main()


__all__ = ["INTERRUPTED", "main"]
