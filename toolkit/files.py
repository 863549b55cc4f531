"""Files written whole: into a file beside the target, then renamed over it, so a reader never
sees half of one and a failed write leaves the old file as it was."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def written_whole(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out`` to write to; renamed over ``out`` when the block ends,
    removed when it raises. OSError (a folder that cannot be made or written) propagates."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    os.close(handle)
    part = Path(name)
    try:
        yield part
        os.chmod(part, 0o644)
        os.replace(part, out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


__all__ = ["written_whole"]
