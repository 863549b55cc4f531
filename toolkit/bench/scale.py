"""Scaling: the real pipeline on the default study scaled to N instances, stage by stage.

    stl bench scale                                   # N = 1e5, 1e6 on DuckDB, K = 8
    stl bench scale -n 1e5 -n 1e6 -n 1e7 --actions 8 --memory-limit 4GB
    stl bench scale -n 1e5 -n 1e6 --engine "pyspark://local[2]"

Each N runs ``toolkit.pipeline.run_study`` on the default study (one dataset, one model,
48 samples per instance, majority vote) with ``datasets[0].instances = N``, K actions
(K = 5: b in {1, 2, 4, 8, 16}; K = 8: b in {1, 2, 3, 4, 6, 8, 12, 16}) and the chosen engine,
into a fresh folder (under ``--out``, default the system's temporary folder; removed after
each run unless ``--keep``). DuckDB runs with ``[engine] memory_limit`` (default 4GB): beyond it
DuckDB spills to ``study.duckdb.tmp/`` beside the file instead of failing.

One row per engine, K, N and stage:

- ``seconds``: the stage's wall time (``RunResult.stage_seconds``); ``inst_per_s``: N / seconds;
- ``growth``: ``log(t2 / t1) / log(N2 / N1)`` against the previous N of the same engine, K and
  stage: 1 is linear, 2 quadratic (below 1: fixed costs still dominate the smaller N);
- ``peak_mib``: the largest resident memory of this process *and its children* (the Spark
  JVM is one) sampled every 0.2 s from ``/proc`` during the stage; ``start_mib`` the same sum
  when the stage began (memory earlier stages left allocated);
- ``spill_mib``: the largest size of the DuckDB spill folder seen during the stage (0: DuckDB
  stayed within its memory limit without spilling);
- a ``total`` row per run: the whole ``run_study`` call (schema, commit included), the peak over
  the run, and the database file's size in the note, with the size check's estimate of both
  (``toolkit.preflight.SizeEstimate``, which ``stl run`` compares with the machine first).

These are measurements, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from toolkit.bench import print_table
from toolkit.config import Study, default_study_path, load_study, parse_study
from toolkit.errors import StudyError
from toolkit.pipeline import STAGES, database_path, run_study
from toolkit.preflight import SizeEstimate

SAMPLES_BY_K = {5: [1, 2, 4, 8, 16], 8: [1, 2, 3, 4, 6, 8, 12, 16]}
DEFAULT_SIZES = (100_000, 1_000_000)
DEFAULT_ENGINES = ("duckdb",)
DEFAULT_MEMORY_LIMIT = "4GB"
DEFAULT_ACTIONS = 8
DEFAULT_STAGES = tuple(stage for stage in STAGES if stage != "report")
SAMPLE_SECONDS = 0.2
_PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------
def scaled_study(
    instances: int,
    actions: int = DEFAULT_ACTIONS,
    engine: str = "duckdb",
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    base: Study | None = None,
) -> Study:
    """The default study (or ``base``) with N instances, K actions and the engine, validated
    again as a study file would be."""
    if actions not in SAMPLES_BY_K:
        raise ValueError(f"actions: K must be one of {sorted(SAMPLES_BY_K)}, got {actions}")
    base = base or load_study(default_study_path())
    data = base.model_dump(mode="json")
    data["study"]["name"] = f"scale-{instances}-k{actions}"
    data["datasets"][0]["instances"] = instances
    data["actions"]["samples"] = SAMPLES_BY_K[actions]
    data["engine"] = {**data["engine"], "url": engine, "memory_limit": memory_limit}
    return parse_study(data, f"<scaled default study, N = {instances}>")


# --------------------------------------------------------------------------------------------
# Memory: this process and its children, from /proc
# --------------------------------------------------------------------------------------------
def _descendants(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # the command name (2nd field) may hold spaces: the ppid is 2nd after its ')'
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def tree_rss_bytes(root: int | None = None) -> int:
    """Resident memory of ``root`` (this process) and its descendants, in bytes."""
    total = 0
    for pid in _descendants(os.getpid() if root is None else root):
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def folder_bytes(folder: Path | None) -> int:
    """The size of every file under ``folder`` (0 if it does not exist)."""
    if folder is None:
        return 0
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


@dataclass(eq=False)  # open windows are told apart by identity: two can hold equal peaks
class _Window:
    start_rss: int = 0
    peak_rss: int = 0
    peak_spill: int = 0


@dataclass
class Sampler:
    """Samples the process tree's RSS (and a spill folder's size) every ``interval`` seconds
    in a background thread; ``window()`` records the peaks while it is open."""

    spill: Path | None = None
    interval: float = SAMPLE_SECONDS
    _open: list[_Window] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _sample(self) -> None:
        rss, spill = tree_rss_bytes(), folder_bytes(self.spill)
        with self._lock:
            for window in self._open:
                window.peak_rss = max(window.peak_rss, rss)
                window.peak_spill = max(window.peak_spill, spill)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @contextlib.contextmanager
    def window(self) -> Iterator[_Window]:
        rss = tree_rss_bytes()
        window = _Window(start_rss=rss, peak_rss=rss, peak_spill=folder_bytes(self.spill))
        with self._lock:
            self._open.append(window)
        try:
            yield window
        finally:
            self._sample()  # a stage shorter than the interval still gets its end state
            with self._lock:
                self._open.remove(window)


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------
def _mib(n_bytes: int) -> float:
    return n_bytes / 2**20


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """File descriptor 1 to /dev/null: DuckDB draws its progress bar on stdout, even into a
    file, and the table is what stdout is for."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _engine_label(url: str) -> str:
    return "spark " + url.removeprefix("pyspark://") if url.startswith("pyspark") else url


def measure(
    instances: int,
    actions: int,
    engine: str,
    memory_limit: str | None,
    stages: Sequence[str],
    folder: Path,
    log=None,
) -> list[dict]:
    """One run of the scaled study into ``folder``: a row per stage and a total row."""
    study = scaled_study(instances, actions, engine, memory_limit)
    database = database_path(folder)
    spill = database.with_name(database.name + ".tmp")
    windows: dict[str, _Window] = {}
    with Sampler(spill=spill) as sampler:

        @contextlib.contextmanager
        def progress(stage: str) -> Iterator[None]:
            if log is not None:
                print(
                    f"[{time.strftime('%H:%M:%S')}] N={instances:,} {engine}: {stage} ...",
                    file=log,
                    flush=True,
                )
            with sampler.window() as window:
                yield
            windows[stage] = window
            if log is not None:
                print(
                    f"[{time.strftime('%H:%M:%S')}] N={instances:,} {engine}: {stage} done, "
                    f"peak {_mib(window.peak_rss):,.0f} MiB, spill "
                    f"{_mib(window.peak_spill):,.0f} MiB",
                    file=log,
                    flush=True,
                )

        with sampler.window() as whole, _stdout_silenced():
            start = time.perf_counter()
            result = run_study(study, folder, stages=tuple(stages), progress=progress)
            total = time.perf_counter() - start
    key = {
        "engine": _engine_label(engine),
        "K": actions,
        "instances": instances,
    }
    rows = []
    for stage, seconds in result.stage_seconds.items():
        window = windows[stage]
        rows.append(
            {
                **key,
                "stage": stage,
                "seconds": seconds,
                "inst_per_s": instances / seconds if seconds > 0 else math.inf,
                "growth": "",
                "start_mib": _mib(window.start_rss),
                "peak_mib": _mib(window.peak_rss),
                "spill_mib": _mib(window.peak_spill),
                "note": "",
            }
        )
    size = database.stat().st_size if database.exists() else 0
    estimate = SizeEstimate.of(study, instances, learns=bool({"learn", "evaluate"} & set(stages)))
    rows.append(
        {
            **key,
            "stage": "total",
            "seconds": total,
            "inst_per_s": instances / total,
            "growth": "",
            "start_mib": _mib(whole.start_rss),
            "peak_mib": _mib(whole.peak_rss),
            "spill_mib": _mib(whole.peak_spill),
            "note": f"db {size / 2**30:,.2f} GiB; {result.rows.get('samples', 0):,} samples, "
            f"{result.rows.get('outcomes', 0):,} outcomes; the preflight estimate: peak "
            f"{_mib(estimate.memory_bytes):,.0f} MiB, db {estimate.disk_bytes / 2**30:,.2f} GiB",
        }
    )
    return rows


def add_growth(rows: list[dict]) -> list[dict]:
    """Fill ``growth`` of each row from the previous N of the same engine, K and stage."""
    previous: dict[tuple, dict] = {}
    for row in rows:
        key = (row["engine"], row["K"], row["stage"])
        before = previous.get(key)
        if before is not None and row["instances"] != before["instances"]:
            ratio = row["seconds"] / before["seconds"]
            row["growth"] = math.log(ratio) / math.log(row["instances"] / before["instances"])
        previous[key] = row
    return rows


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    engines: Sequence[str] = DEFAULT_ENGINES,
    actions: int = DEFAULT_ACTIONS,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    stages: Sequence[str] = DEFAULT_STAGES,
    out: Path | None = None,
    keep: bool = False,
    log=None,
) -> list[dict]:
    """Every engine at every size (ascending), one fresh folder per run."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"stages: unknown {unknown}; known: {', '.join(STAGES)}")
    stages = tuple(s for s in STAGES if s in stages)
    rows: list[dict] = []
    parent = Path(out) if out is not None else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    for engine in engines:
        for n in sorted(sizes):
            folder = Path(tempfile.mkdtemp(prefix=f"scale-{n}-k{actions}-", dir=parent))
            try:
                measured = measure(n, actions, engine, memory_limit, stages, folder, log)
            finally:
                if not keep:
                    shutil.rmtree(folder, ignore_errors=True)
            if keep:
                measured[-1]["note"] += f"; kept in {folder}"
            rows.extend(measured)
            if log is not None:  # each run's rows as soon as it ends: long runs leave a trace
                print_table(add_growth(list(rows)), file=log)
                log.flush()
    return add_growth(rows)


def header(engines: Sequence[str], actions: int, memory_limit: str | None) -> str:
    """What the table was measured on and with."""
    cores = os.cpu_count()
    with open("/proc/meminfo") as handle:
        total_kib = int(handle.readline().split()[1])
    return (
        f"# stl bench scale: default study, 1 model x 48 samples per instance, majority vote, "
        f"K = {actions} actions (b in {SAMPLES_BY_K[actions]}), 5 budgets\n"
        f"# engines: {', '.join(engines)}; DuckDB memory_limit = {memory_limit or 'none'} "
        f"(spills to study.duckdb.tmp/)\n"
        f"# machine: {cores} cores, {total_kib / 2**20:.1f} GiB RAM; peak_mib = RSS of this "
        f"process and its children, sampled every {SAMPLE_SECONDS} s"
    )


def parse_size(text: str) -> int:
    """``1e6``, ``1000000`` or ``1_000_000``."""
    value = float(text.replace("_", ""))
    if value < 1 or value != int(value):
        raise ValueError(f"instances: expected a positive whole number, got {text!r}")
    return int(value)


@dataclass(frozen=True)
class ScaleOptions:
    """What ``stl bench scale`` runs: its options, checked, the defaults filled in."""

    sizes: tuple[int, ...]
    engines: tuple[str, ...]
    actions: int
    memory_limit: str
    stages: tuple[str, ...]

    def header(self) -> str:
        return header(self.engines, self.actions, self.memory_limit)

    def arguments(self) -> dict:
        """``run``'s keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def options(
    instances: Sequence[str] | None = None,
    engines: Sequence[str] | None = None,
    actions: int | None = None,
    memory_limit: str | None = None,
    stages: str | None = None,
) -> ScaleOptions:
    """The command line's values (None: the default); StudyError names a bad one."""
    try:
        sizes = tuple(parse_size(text) for text in instances or ()) or DEFAULT_SIZES
    except ValueError as error:
        raise StudyError(str(error)) from None
    actions = DEFAULT_ACTIONS if actions is None else actions
    if actions not in SAMPLES_BY_K:
        raise StudyError(f"--actions: one of {sorted(SAMPLES_BY_K)}, got {actions}")
    chosen = DEFAULT_STAGES
    if stages is not None:
        chosen = tuple(s.strip() for s in stages.split(",") if s.strip())
    if not chosen or not set(chosen) <= set(STAGES):
        raise StudyError(f"--stages: some of {', '.join(STAGES)}, got {stages!r}")
    return ScaleOptions(
        sizes=sizes,
        engines=tuple(engines or DEFAULT_ENGINES),
        actions=actions,
        memory_limit=memory_limit or DEFAULT_MEMORY_LIMIT,
        stages=chosen,
    )
