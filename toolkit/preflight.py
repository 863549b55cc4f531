"""Every check ``stl run`` makes before it writes anything, in the order it makes them.

``stl validate`` runs the same function, so the two never disagree:

1. the output folder, when there is one: a folder (or one that can be made) this user can write
   in, its database and report files, not folders, and writable;
2. an imported study's data files, read and checked (``toolkit.ingest``), nothing written;
3. the split: every fold has an instance to train on and one to score;
4. the sizes: the run's estimated peak memory and database size against what this machine has
   available (``SizeEstimate``; ``stl bench scale`` prints it beside what it measures).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.config import SimulatedSpec, Study
from toolkit.errors import StudyError
from toolkit.formatting import size_text
from toolkit.splits import check_split_sizes

if TYPE_CHECKING:
    import pyarrow as pa

    from toolkit.ingest import ImportedDataset

# Per-unit costs, fitted to the peak memory (`/usr/bin/time -v`) and database size of whole
# `stl run`s of the default study at 20,000 and 80,000 instances with 16 or 64 samples, 5 or 7
# actions and 5 or 10 budgets; on those runs the memory estimate was 0.85-1.01 of the measured
# peak and the database estimate 0.99-1.04 of the file. `stl bench scale` prints the estimate
# beside what it measures, at any size. A cell is an (instance, action, budget).
MEMORY_BASE = 390 * 2**20
"""Bytes of a run before its data: Python, DuckDB, CatBoost and ibis loaded."""
MEMORY_PER_INSTANCE = 5_000
"""Features, splits, the outcome matrices and the learned policies' inputs, per instance
(fitted to the runs above; a whole `stl bench scale -n 1e6 --actions 8` run measured 6.2 GiB
at its peak, a fifth below the estimate)."""
MEMORY_PER_INSTANCE_DATA = 550
"""All of a run of the data stages alone (simulate or ingest, outcomes, solve; `stl simulate`)
per instance, the samples aside: the outcomes stage's peak of 9,141 MiB at 10,000,000
instances and 480,000,000 samples in `stl bench scale --stages simulate,outcomes,solve`."""
MEMORY_PER_CELL = 60
"""Every policy's allocation at every budget, which evaluate holds, per cell."""
MEMORY_PER_SAMPLE = 8
"""Per stored sample: they are simulated and appended in chunks, so little of each stays."""
DISK_BASE = 12 * 2**20
DISK_PER_INSTANCE = 170
DISK_PER_CELL = 8
DISK_PER_SAMPLE = 4.5
"""Bytes of database: a fixed part, then per instance, per cell (when the run learns and
evaluates) and per sample (compressed); 3.6 GiB estimated for the 3.65 GiB database of the
data stages at 10,000,000 instances in `stl bench scale`."""


@dataclass(frozen=True)
class SizeEstimate:
    """What a run will hold: its instances and samples, and its estimated peak memory and
    database size (bytes), from the per-unit costs above."""

    instances: int
    samples: int
    cells: int
    memory_bytes: int
    disk_bytes: int

    @classmethod
    def of(
        cls, study: Study, instances: int, samples: int | None = None, *, learns: bool = True
    ) -> SizeEstimate:
        """The estimate for ``instances`` instances; ``samples``: the stored samples when they
        are known (an imported log), else every instance's declared samples from every model;
        ``learns``: whether the run goes on to learn and evaluate."""
        if samples is None:
            samples = instances * len(study.models) * study.estimation.samples_per_instance
        actions = len(study.actions.samples) * len(study.models)
        cells = instances * actions * len(study.budgets.values)
        return cls(
            instances=instances,
            samples=samples,
            cells=cells,
            memory_bytes=MEMORY_BASE
            + (MEMORY_PER_INSTANCE * instances + MEMORY_PER_CELL * cells if learns else 0)
            + (0 if learns else MEMORY_PER_INSTANCE_DATA * instances)
            + MEMORY_PER_SAMPLE * samples,
            disk_bytes=int(
                DISK_BASE
                + DISK_PER_INSTANCE * instances
                + (DISK_PER_CELL * cells if learns else 0)
                + DISK_PER_SAMPLE * samples
            ),
        )

    def describe(self) -> str:
        return (
            f"{self.instances:,} instances, {self.samples:,} samples: an estimated peak of "
            f"{size_text(self.memory_bytes)} of memory and a {size_text(self.disk_bytes)} database"
        )


@dataclass(frozen=True)
class Checked:
    """A study that passed every check: its imported data (None when simulated), the
    instance count of each dataset, and the size estimate."""

    study: Study
    imported: list[ImportedDataset] | None
    instances: dict[str, int]
    size: SizeEstimate
    references: pa.Table | None = None
    """The datasets' declared reference curves (``toolkit.reference``), None without any."""


def check(study: Study, out_dir: str | Path | None = None, *, learns: bool = True) -> Checked:
    """Run every check, in order; raise StudyError at the first that fails. ``learns``:
    whether the run goes on to learn and evaluate (``stl simulate`` does not), which sets the
    split check and the memory estimate."""
    database = Path(out_dir) / "study.duckdb" if out_dir is not None else None
    if database is not None:
        check_output(database)
    simulated = all(spec.source == "simulate" for spec in study.datasets)
    if simulated:
        imported = None
        instances = {
            spec.name: spec.instances
            for spec in study.datasets
            if isinstance(spec, SimulatedSpec)  # (every one)
        }
        size = SizeEstimate.of(study, sum(instances.values()), learns=learns)
    else:  # DuckDB and Arrow load only for a study that imports data
        from toolkit.ingest import ingest

        imported = ingest(study)
        instances = {data.name: data.instances.num_rows for data in imported}
        samples = sum(data.samples.num_rows for data in imported)
        size = SizeEstimate.of(study, sum(instances.values()), samples, learns=learns)
    if learns:
        check_split_sizes(instances, study.split)
    check_size(size, database)
    references = None
    if any(spec.reference is not None for spec in study.datasets):
        from toolkit.reference import read_references

        references = read_references(study)
    return Checked(study, imported, instances, size, references)


def check_cells(
    study: Study, out_dir: str | Path | None = None, *, learns: bool = True
) -> list[Checked]:
    """``check`` for every run the study makes (``Study.cells``: itself, or one per dataset or
    model), then the runs together: they land in one transaction, so their databases add up on
    the disk, and every cell's imported data is held until the last lands."""
    cells = study.cells()
    if len(cells) == 1:
        return [check(cells[0], out_dir, learns=learns)]
    checked = []
    for cell in cells:
        try:
            checked.append(check(cell, out_dir, learns=learns))
        except StudyError as error:  # which cell: a check can fail in one and pass in another
            raise StudyError(f"run {cell.study.name!r} (study.separately): {error}") from None
    sizes = [c.size for c in checked]
    held = sum(c.size.samples for c in checked if c.imported is not None)
    check_size(
        SizeEstimate(
            instances=sum(s.instances for s in sizes),
            samples=sum(s.samples for s in sizes),
            cells=sum(s.cells for s in sizes),
            memory_bytes=max(s.memory_bytes for s in sizes) + MEMORY_PER_SAMPLE * held,
            disk_bytes=sum(s.disk_bytes for s in sizes) - DISK_BASE * (len(sizes) - 1),
        ),
        Path(out_dir) / "study.duckdb" if out_dir is not None else None,
    )
    return checked


def _existing_ancestor(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists():
            return folder
    return Path.cwd()


def check_output(database: Path) -> None:
    """The output folder is a folder (or can be made one) this user can write in, and its
    database and report, where they exist, are files this user can write."""
    out = database.parent
    nearest = _existing_ancestor(out)
    if not nearest.is_dir():
        raise StudyError(f"--out {out}: {nearest} is a file, not a folder")
    try:  # a file made and removed at once: whether this user may create files there
        with tempfile.TemporaryFile(dir=nearest):
            pass
    except OSError as error:
        raise StudyError(f"--out {out}: cannot write in {nearest}: {error.strerror}") from None
    for path, what in ((database, "a study database"), (out / "report.html", "a report")):
        if not path.exists():
            continue
        if not path.is_file():
            raise StudyError(f"{path}: is a folder, not {what}; choose another --out")
        try:  # opened for writing, nothing written: refused when read-only or immutable
            with path.open("r+b"):
                pass
        except OSError as error:
            raise StudyError(f"{path}: cannot write it: {error.strerror}") from None


def available_memory() -> int | None:
    """Bytes of memory available to a new process (Linux ``MemAvailable``, else the physical
    memory); None when unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def check_size(size: SizeEstimate, database: Path | None) -> None:
    """Refuse a run whose estimated peak memory exceeds the memory available, or whose
    database would not fit on the disk it goes to."""
    memory = available_memory()
    if memory is not None and size.memory_bytes > memory:
        raise StudyError(
            f"the study is too large for this machine: {size.describe()}, and "
            f"{size_text(memory)} of memory is available (datasets[*].instances, "
            "estimation.samples_per_instance, actions.samples and budgets.values set the size)"
        )
    if database is None:
        return
    free = shutil.disk_usage(_existing_ancestor(database.parent)).free
    if size.disk_bytes > free:
        raise StudyError(
            f"--out {database.parent}: the study would not fit on its disk: {size.describe()}, "
            f"and {size_text(free)} is free there"
        )


__all__ = [
    "Checked",
    "SizeEstimate",
    "available_memory",
    "check",
    "check_cells",
    "check_output",
    "check_size",
]
