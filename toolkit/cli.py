"""The command line: one small function per command, each calling one library verb."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from toolkit.entry import INTERRUPTED, exit_interrupted
from toolkit.errors import (
    InterruptedAfterLanding,
    StudyError,
    interrupt_requested,
    landed_run,
    request_interrupt,
)

if TYPE_CHECKING:  # the study's settings (pydantic) and rich load in the commands that use them
    from rich.console import Console

    from toolkit.config import Study

PIPED_WIDTH = 200
"""Columns of text written to a file or a pipe when ``COLUMNS`` is not set: wide enough that
no help line or message is wrapped (a pager or editor wraps as its reader likes)."""

HELP_MAX_WIDTH = 100
"""Widest help text in a terminal that does not set ``COLUMNS`` (click's default is 80)."""


def output_width(stream: TextIO) -> int | None:
    """Columns for text written to ``stream``: ``$COLUMNS`` when set, None (the terminal's
    own width) on a terminal, else ``PIPED_WIDTH``."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if stream.isatty() else PIPED_WIDTH


# Help texts are plain text, not rich markup: "[engine] url" is shown as written (rich would
# take "[engine]" for a style tag and drop it), and plain help reads the same piped.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Solve-then-Learn: allocate LLM test-time compute per input under a budget.",
)
bench_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Benchmarks that print a table."
)
app.add_typer(bench_app, name="bench")


@functools.cache
def _console() -> Console:
    """Progress and messages (stderr); results go to stdout. Made when first used, so that
    rich loads only for a command that writes one (not for ``--help``)."""
    from rich.console import Console

    return Console(stderr=True, width=output_width(sys.stderr))


def _say(text: str) -> None:
    """A message on stderr, as written: no markup, no highlighting, no inserted line breaks."""
    _console().print(text, markup=False, highlight=False, soft_wrap=True)


StudyArg = Annotated[
    Path | None,
    typer.Argument(help="A study TOML file; the built-in default study when omitted."),
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder for study.duckdb.")]


EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where the core queries run: 'duckdb' or 'pyspark://MASTER' (e.g. "
        "pyspark://local[2]); overrides the study's [engine] url.",
    ),
]


def _load(path: Path | None, engine: str | None = None) -> Study:
    from toolkit.config import default_study_path, load_study, with_engine

    study = load_study(path if path is not None else default_study_path())
    return study if engine is None else with_engine(study, engine)


@contextlib.contextmanager
def _bar(what: str, total: int | None) -> Iterator:
    """A progress bar on stderr (erased when done): a spinner until the callback it yields,
    ``(done, total)``, gives a total, then a bar with the count and the time left."""
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Count(ProgressColumn):
        """done/total, once there is a total (nothing before)."""

        def render(self, task) -> Text:
            return Text("" if task.total is None else f"{task.completed:,.0f}/{task.total:,.0f}")

    with Progress(
        SpinnerColumn(),
        f"[bold]{what}[/bold]",
        BarColumn(),
        Count(),
        TimeRemainingColumn(),
        console=_console(),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextlib.contextmanager
def _progress(stage: str) -> Iterator:
    """A stage of a run: on a terminal, a spinner, and a bar once the stage counts its steps
    (learn's CatBoost fits, evaluate's policies); a line when it is done, on a terminal or
    not."""
    if _console().is_terminal:
        with _bar(stage, None) as step:
            yield step
    else:
        yield None
    _say(f"  {stage} done")


def aligned(blocks: list[tuple[str, str, list[tuple[str, str]]]], indent: str = "  ") -> list[str]:
    """Blocks of (name, value) rows under a (name heading, value heading) line, as text lines:
    names left-aligned and values right-aligned, each in one column across all blocks,
    whatever the names' lengths."""
    names = [heading for heading, _, _ in blocks] + [n for _, _, rows in blocks for n, _ in rows]
    values = [heading for _, heading, _ in blocks] + [v for _, _, rows in blocks for _, v in rows]
    name_width, value_width = max(map(len, names)), max(map(len, values))
    lines = []
    for name_heading, value_heading, rows in blocks:
        for name, value in [(name_heading, value_heading), *rows]:
            lines.append(f"{indent}{name:<{name_width}}  {value:>{value_width}}")
    return lines


def summary_lines(result) -> list[str]:
    """What ``stl run`` prints when a run has landed: where, seconds per stage, rows per
    table, the report."""
    replaced = (
        " (replacing the earlier run of this study, config and seed)" if result.replaced else ""
    )
    stages = [(stage, f"{seconds:.2f}") for stage, seconds in result.stage_seconds.items()]
    tables = [(table, f"{rows:,}") for table, rows in result.rows.items()]
    if result.cells:
        lines = [f"runs {', '.join(map(str, result.run_ids))} -> {result.database}{replaced}"]
        lines += [f"  run {cell.run_id}: {cell.name}" for cell in result.cells]
    else:
        lines = [f"run {result.run_id} -> {result.database}{replaced}"]
    lines += aligned([("stage", "seconds", stages), ("table", "rows", tables)])
    if result.report is not None:
        lines.append(f"report -> {result.report}")
    ranked = [cell for cell in result.cells or [result] if cell.headline]
    if ranked:
        from toolkit.formatting import headline_text

        lines.append(
            "\nPolicies at the same realised spend (accuracy at mean cost = B on the test "
            "split; cost: what the policy's own B-priced allocation spent):"
        )
        for cell in ranked:
            lines += [f"\nrun {cell.run_id}: {cell.name}"] if result.cells else []
            lines.append(headline_text(cell.headline, result.cost_unit))
    return lines


def _summarise(result) -> None:
    typer.echo("\n".join(summary_lines(result)))


@app.command()
def run(study: StudyArg = None, out: OutOpt = Path("out"), engine: EngineOpt = None) -> None:
    """Run the whole study into OUT/study.duckdb and write OUT/report.html."""
    parsed = _load(study, engine)  # a bad study file is refused before the stages load
    from toolkit.pipeline import run_study

    _summarise(run_study(parsed, out, progress=_progress))


@app.command()
def simulate(study: StudyArg = None, out: OutOpt = Path("out"), engine: EngineOpt = None) -> None:
    """Simulate a study's samples and estimate its outcomes, nothing further."""
    parsed = _load(study, engine)
    from toolkit.pipeline import run_study

    _summarise(run_study(parsed, out, stages=("simulate", "outcomes"), progress=_progress))


@app.command()
def validate(
    study: Annotated[Path, typer.Argument(help="A study TOML file.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also check the output folder `stl run --out` would use."),
    ] = None,
) -> None:
    """Check a study file, and the data files it imports, as `stl run` would before it writes
    anything; print the resolved settings (models with their presets applied)."""
    import dataclasses
    import json

    from toolkit.config import load_study, resolve_model
    from toolkit.preflight import check_cells

    parsed = load_study(study)
    cells = check_cells(parsed, out)  # the checks `stl run` makes first, in its order
    for checked in cells:
        name = f"{study}: {checked.study.study.name}" if len(cells) > 1 else f"{study}"
        if checked.imported is not None:  # read as the run's ingest stage reads; nothing written
            counted = sum(checked.instances.values())
            _say(f"{name}: read {len(checked.imported)} data file(s), {counted:,} instances")
        _say(f"{name}: {checked.size.describe()}")
    if parsed.actions.cost != "samples":  # the range of mean cost is the outcomes' to know
        _say(
            f"{study}: budgets in {parsed.actions.cost} are checked against the range of mean "
            "cost once the run's outcomes stage has costed every action (before anything lands)"
        )
    _say(f"{study}: valid (config hash {parsed.config_hash()})")
    settings = parsed.model_dump(mode="json")
    settings["models"] = [
        {"name": spec.name, "preset": spec.preset, **dataclasses.asdict(resolve_model(spec))}
        for spec in parsed.models
    ]
    typer.echo(json.dumps(settings, indent=2))


DbOpt = Annotated[Path, typer.Option("--db", help="A study database (opened read-only).")]

# the options of the commands that apply a learned policy (allocate, serve)
BudgetOpt = Annotated[float, typer.Option("--budget", "-b", help="Mean cost per request.")]
RunOpt = Annotated[
    int | None, typer.Option("--run", help="The run whose policy decides (the latest).")
]
ColumnsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--columns",
        "-c",
        help="ROLE=NAME (a column or field) for id, text, level, subject; default: the "
        "study's metadata columns. Repeat for each.",
    ),
]
PolicyOpt = Annotated[
    Path | None,
    typer.Option("--policy", help="A saved policy folder (stl export --policy) instead of --db."),
]
PolicySeedOpt = Annotated[
    int | None, typer.Option("--policy-seed", help="The CatBoost seed (the first).")
]
DrawSeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the draws between two actions.")]


@app.command()
def report(
    db: Annotated[
        list[Path] | None,
        typer.Option("--db", help="A study database; repeat to compare studies side by side."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The HTML file.")] = None,
    run_id: Annotated[
        list[int] | None,
        typer.Option("--run", help="A run id in the database; repeat to compare runs."),
    ] = None,
) -> None:
    """Write the HTML report of a run (next to its database), or compare several runs."""
    from toolkit.report import write

    _say(f"report -> {write(db or [Path('out/study.duckdb')], out, run_id or [])}")


@app.command()
def sql(
    file: Annotated[Path, typer.Argument(help="A SQL file, e.g. sql/analyses/*.sql.")],
    db: DbOpt = Path("out/study.duckdb"),
    allow_files: Annotated[
        Path | None,
        typer.Option(
            "--allow-files",
            help="A folder the SQL may read files from (read_csv, read_parquet; and copy to).",
        ),
    ] = None,
) -> None:
    """Run a SQL file on a study database (read-only, no other file, no extension install) and
    print the rows as a table."""
    from toolkit.bi import format_table, run_sql_file

    typer.echo(format_table(run_sql_file(file, db, allow_files)))


@app.command()
def allocate(
    requests: Annotated[
        Path, typer.Argument(help="A file of requests: CSV, JSONL, JSON or Parquet records.")
    ],
    budget: BudgetOpt,
    db: DbOpt = Path("out/study.duckdb"),
    run_id: RunOpt = None,
    columns: ColumnsOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Decisions: .jsonl, .csv or .parquet.")
    ] = None,
    seed: DrawSeedOpt = 0,
    policy_seed: PolicySeedOpt = None,
    policy: PolicyOpt = None,
) -> None:
    """Allocate new requests with a run's learned policy, priced to meet BUDGET on the batch;
    print the planned mean cost and each action's share, write one decision per request."""
    from toolkit.deploy import CHUNK, summary, write_decisions

    deployed = _deployed(policy, db, run_id, policy_seed)
    mapping = _columns(columns) if columns else deployed.columns
    with _console().status(f"reading {requests} ..."):
        rows = deployed.read(requests, mapping)
    if rows.num_rows > CHUNK and _console().is_terminal:  # a bar over a large batch, erased after
        with _bar("deciding", rows.num_rows) as advance:
            decisions = deployed.allocate(rows, budget, seed, progress=advance)
    else:
        decisions = deployed.allocate(rows, budget, seed)
    for line in summary(decisions, budget):
        _say(line)
    if out is None:
        for row in decisions.to_pylist():
            typer.echo(json.dumps(row))
    else:
        write_decisions(decisions, out)
        _say(f"decisions -> {out}")


@app.command()
def serve(
    budget: BudgetOpt,
    db: DbOpt = Path("out/study.duckdb"),
    run_id: RunOpt = None,
    columns: ColumnsOpt = None,
    policy: PolicyOpt = None,
    policy_seed: PolicySeedOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    window: Annotated[
        int, typer.Option("--window", help="Requests the price is calibrated on.")
    ] = 1_000,
    horizon: Annotated[
        int, typer.Option("--horizon", help="Requests over which an over/underspend is repaid.")
    ] = 100,
    seed: DrawSeedOpt = 0,
) -> None:
    """Serve a run's learned policy over HTTP (POST /allocate, GET /health, GET /stats), paced
    online so the running mean planned cost tracks BUDGET; SIGTERM or Ctrl-C stops it."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise StudyError(
            "stl serve needs FastAPI and uvicorn: pip install 'stl-toolkit[serve]'"
        ) from None
    from toolkit.serve import create_app, run

    if not 0 < port < 65536:
        raise StudyError(f"--port: 1 to 65535, got {port}")
    deployed = _deployed(policy, db, run_id, policy_seed)
    mapping = _columns(columns) if columns else deployed.columns
    app = create_app(deployed, budget, mapping, window=window, horizon=horizon, seed=seed)
    _say(f"serving run {deployed.run_id}'s policy at B = {budget:g} on http://{host}:{port}")
    run(app, host, port)
    stats = app.state.pacer.stats()
    mean = "-" if stats.mean_planned_cost is None else f"{stats.mean_planned_cost:.6g}"
    plural = "" if stats.requests == 1 else "s"
    _say(f"stopped after {stats.requests:,} request{plural} (mean planned cost {mean})")


def _deployed(policy: Path | None, db: Path, run_id: int | None, policy_seed: int | None):
    """The learned policy a command applies: a saved folder, or a run of a study database."""
    from toolkit.deploy import BudgetPolicy

    if policy is not None:
        return BudgetPolicy.load(policy)
    return BudgetPolicy.from_run(db, run_id, policy_seed)


def _columns(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        role, sep, column = pair.partition("=")
        if not sep or not role.strip() or not column.strip():
            raise StudyError(f"--columns {pair!r}: write ROLE=COLUMN, e.g. text=problem")
        mapping[role.strip()] = column.strip()
    return mapping


@app.command()
def export(
    db: DbOpt = Path("out/study.duckdb"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet files.")] = Path(
        "out/parquet"
    ),
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            help="Instead: save a run's learned policy into this folder (for stl allocate "
            "--policy), loadable without the database.",
        ),
    ] = None,
    run_id: Annotated[
        int | None, typer.Option("--run", help="With --policy: the run (the latest).")
    ] = None,
    policy_seed: Annotated[
        int | None, typer.Option("--policy-seed", help="With --policy: the CatBoost seed.")
    ] = None,
) -> None:
    """Export every table and view of a study database as Parquet, one folder each; or, with
    --policy, a run's learned policy as a folder."""
    from toolkit.bi import export_study, format_table

    if policy is not None:
        from toolkit.deploy import BudgetPolicy

        saved = BudgetPolicy.from_run(db, run_id, policy_seed).save(policy)
        _say(f"policy -> {saved}")
        return

    exported = export_study(db, out)
    typer.echo(
        format_table(
            [
                {
                    "name": item.name,
                    "kind": item.kind,
                    "rows": item.rows,
                    "files": f"{item.name}/run_id=*/" if item.partitioned else f"{item.name}/",
                }
                for item in exported
            ]
        )
    )
    typer.echo(f"{len(exported)} tables and views -> {out}")


def _instance_count(text: str) -> int:
    """``-n 1e6``: ``bench.scale.parse_size``."""
    from toolkit.bench.scale import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


InstanceCounts = Annotated[
    list[int] | None,
    typer.Option(
        "--instances",
        "-n",
        parser=_instance_count,
        help="Instance counts to time, e.g. 1e5 (repeat; default: the bench's).",
    ),
]


def _print_bench(name: str, **given) -> None:
    """Run ``toolkit.bench.<name>.run`` with the options given (None: its own default) and
    print its table."""
    from toolkit.bench import print_table

    run = importlib.import_module(f"toolkit.bench.{name}").run
    print_table(run(**{key: value for key, value in given.items() if value is not None}))


@bench_app.command("simulate")
def bench_simulate(instances: InstanceCounts = None) -> None:
    """Simulation throughput (samples per second), simulate and land in DuckDB."""
    _print_bench("simulate", sizes=tuple(instances) if instances else None)


@bench_app.command("outcomes")
def bench_outcomes(instances: InstanceCounts = None) -> None:
    """Time the outcomes stage at N instances x 48 samples, K = 8, against a numpy reference
    for its true accuracies (default N = 1e5, 1e6)."""
    _print_bench("outcomes", sizes=tuple(instances) if instances else None)


@bench_app.command("solve")
def bench_solve(instances: InstanceCounts = None) -> None:
    """Solve stage: DuckDB bisection and the 50-budget hull sweep vs a numpy bisection."""
    _print_bench("solve", sizes=tuple(instances) if instances else None)


@bench_app.command("adaptive")
def bench_adaptive(instances: InstanceCounts = None) -> None:
    """Stopping-rule estimation (instances per second, 48 samples each): the exact program
    against a numpy Monte Carlo over 200 orders, in the same run."""
    _print_bench("adaptive", sizes=tuple(instances) if instances else None)


@bench_app.command("study")
def bench_study() -> None:
    """Seconds per stage of the whole default study."""
    _print_bench("study")


@bench_app.command("pacing")
def bench_pacing(
    budget: Annotated[
        float | None, typer.Option("--budget", "-b", help="B of the stream (default 4).")
    ] = None,
) -> None:
    """Online pacing on a stream of 20,000 requests whose mix shifts halfway, per horizon:
    the worst running mean cost error after 1,000 requests and the accuracy against the
    batch-priced policy; a price frozen after 1,000 requests for reference."""
    _print_bench("pacing", budget=budget)


@bench_app.command("serve")
def bench_serve(
    budget: Annotated[
        float | None, typer.Option("--budget", "-b", help="With --db or --policy: B.")
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="A study database whose policy serves.")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="A saved policy folder instead.")
    ] = None,
    requests: Annotated[
        Path | None, typer.Option("--requests", help="A .jsonl file of records to send.")
    ] = None,
    columns: Annotated[
        list[str] | None, typer.Option("--columns", "-c", help="ROLE=FIELD, as stl serve.")
    ] = None,
) -> None:
    """stl serve under load (a real process and HTTP client): p50/p99 latency of one record and
    decisions per second in batches of 1,000, against GET /health in the same run; by default
    on a small study trained here."""
    from toolkit.bench import print_table
    from toolkit.bench.serve import _records
    from toolkit.bench.serve import run as run_bench

    if db is None and policy is None:
        print_table(run_bench())
        return
    if budget is None or requests is None:
        raise StudyError("--db or --policy needs --budget and --requests")
    arguments = ["--policy", str(policy)] if policy is not None else ["--db", str(db)]
    arguments += ["--budget", str(budget)]
    for pair in columns or []:
        arguments += ["-c", pair]
    print_table(run_bench(arguments, _records(requests)))


@bench_app.command("scale")
def bench_scale(
    instances: Annotated[
        list[str] | None,
        typer.Option("--instances", "-n", help="Instance counts, e.g. 1e5 (repeat; 1e5 1e6)."),
    ] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option("--engine", help="duckdb | pyspark://local[2] (repeat; default duckdb)."),
    ] = None,
    actions: Annotated[
        int | None,
        typer.Option("--actions", "-k", help="K = 5 (b 1..16 doubling) or 8 (the default)."),
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option("--memory-limit", help="DuckDB's memory limit (the header says it)."),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option("--stages", help="Comma-separated stages (default: all but report)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the runs (a temp folder).")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep each run's folder.")] = False,
) -> None:
    """The pipeline at N instances: seconds, peak memory and spill per stage, growth with N."""
    from toolkit.bench import print_table
    from toolkit.bench.scale import options, run

    chosen = options(instances, engine, actions, memory_limit, stages)  # the defaults: there
    typer.echo(chosen.header())
    print_table(run(**chosen.arguments(), out=out, keep=keep, log=sys.stderr))


def main() -> None:
    """Entry point: user errors exit 2 with the message, without a traceback."""
    # Ctrl-C and a kill alike: rolled back, and remembered (an interrupt raised inside a
    # __del__ is dropped by Python; the run checks before it commits)
    signal.signal(signal.SIGINT, request_interrupt)
    signal.signal(signal.SIGTERM, request_interrupt)
    sys.unraisablehook = _unraisable
    try:
        # help text as wide as the output allows (the context settings reach subcommands)
        status = app(
            standalone_mode=False,
            terminal_width=output_width(sys.stdout),
            max_content_width=HELP_MAX_WIDTH,
        )
    except (KeyboardInterrupt, InterruptedAfterLanding):  # before or after a run landed
        status = INTERRUPTED
    except StudyError as error:
        _say(f"error: {error}")
        sys.exit(2)
    except typer.Abort:
        sys.exit(1)
    except typer.TyperException as error:  # usage errors: unknown option, missing argument
        # typer raises its (vendored) click's ClickException, which shows itself with the
        # usage line; the public TyperException type does not declare show()
        show = getattr(error, "show", None)
        if show is not None:
            show()
        else:
            _say(f"error: {error.format_message()}")
        sys.exit(error.exit_code)
    except Exception as error:  # Ctrl-C inside a DuckDB call or an import: caused by it
        if not (interrupt_requested() or _caused_by_interrupt(error)):
            raise
        status = INTERRUPTED
    if status == INTERRUPTED:  # typer returns click's Abort on Ctrl-C as exit code 130
        landed = landed_run()  # a run that committed before the interrupt is kept
        exit_interrupted(
            f"interrupted: {landed}"
            if landed
            else "interrupted: nothing was written (a run in progress was rolled back)"
        )
    if isinstance(status, int) and status:
        sys.exit(status)


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """An interrupt dropped inside a ``__del__`` is not printed (the run stops at its next
    check, ``raise_if_interrupted``); anything else is, as Python would."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


def _caused_by_interrupt(error: BaseException) -> bool:
    """Whether ``error`` is DuckDB's answer to Ctrl-C or SIGTERM: its ``InterruptException``,
    or an error raised from a ``KeyboardInterrupt`` (DuckDB's "Query interrupted").

    DuckDB is looked up, never imported here: an interrupt that broke into its import leaves
    the extension half-registered, and importing it again fails ("generic_type: type
    'ExplainType' is already registered!") and then crashes the interpreter (SIGSEGV)."""
    duckdb = sys.modules.get("duckdb")
    interrupted = getattr(duckdb, "InterruptException", KeyboardInterrupt)
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (KeyboardInterrupt, interrupted)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
