"""The command line: one small function per command, each calling one library verb."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from toolkit.config import Study, default_study_path, load_study, with_engine
from toolkit.errors import StudyError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Solve-then-Learn: allocate LLM test-time compute per input under a budget.",
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print a table.")
app.add_typer(bench_app, name="bench")

console = Console(stderr=True)

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
    study = load_study(path if path is not None else default_study_path())
    return study if engine is None else with_engine(study, engine)


@contextlib.contextmanager
def _progress(stage: str) -> Iterator[None]:
    with console.status(f"[bold]{stage}[/bold] ..."):
        yield
    console.print(f"  {stage} done")


def _summarise(result) -> None:
    replaced = (
        " (replacing the earlier run of this study, config and seed)" if result.replaced else ""
    )
    console.print(f"run {result.run_id} -> {result.database}{replaced}")
    for stage, seconds in result.stage_seconds.items():
        console.print(f"  {stage:<12} {seconds:8.2f} s")
    for table, rows in result.rows.items():
        console.print(f"  {table:<12} {rows:>12,} rows")
    if result.report is not None:
        console.print(f"report -> {result.report}")


@app.command()
def run(study: StudyArg = None, out: OutOpt = Path("out"), engine: EngineOpt = None) -> None:
    """Run the whole study into OUT/study.duckdb and write OUT/report.html."""
    from toolkit.pipeline import run_study

    _summarise(run_study(_load(study, engine), out, progress=_progress))


@app.command()
def simulate(study: StudyArg = None, out: OutOpt = Path("out"), engine: EngineOpt = None) -> None:
    """Simulate a study's samples and estimate its outcomes, nothing further."""
    from toolkit.pipeline import run_study

    _summarise(
        run_study(_load(study, engine), out, stages=("simulate", "outcomes"), progress=_progress)
    )


@app.command()
def validate(study: Annotated[Path, typer.Argument(help="A study TOML file.")]) -> None:
    """Check a study file and print its resolved settings (models with their presets applied)."""
    import dataclasses
    import json

    from toolkit.config import resolve_model

    parsed = load_study(study)
    console.print(f"{study}: valid (config hash {parsed.config_hash()})")
    settings = parsed.model_dump(mode="json")
    settings["models"] = [
        {"name": spec.name, "preset": spec.preset, **dataclasses.asdict(resolve_model(spec))}
        for spec in parsed.models
    ]
    typer.echo(json.dumps(settings, indent=2))


DbOpt = Annotated[Path, typer.Option("--db", help="A study database (opened read-only).")]


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

    console.print(f"report -> {write(db or [Path('out/study.duckdb')], out, run_id or [])}")


@app.command()
def sql(
    file: Annotated[Path, typer.Argument(help="A SQL file, e.g. sql/analyses/*.sql.")],
    db: DbOpt = Path("out/study.duckdb"),
) -> None:
    """Run a SQL file on a study database (read-only) and print the rows as a table."""
    from toolkit.bi import format_table, run_sql_file

    typer.echo(format_table(run_sql_file(file, db)))


@app.command()
def export(
    db: DbOpt = Path("out/study.duckdb"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet files.")] = Path(
        "out/parquet"
    ),
) -> None:
    """Export every table and view of a study database as Parquet, one folder each."""
    from toolkit.bi import export_study, format_table

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


@bench_app.command("simulate")
def bench_simulate(
    instances: Annotated[
        list[int] | None, typer.Option("--instances", "-n", help="Instance counts to time.")
    ] = None,
) -> None:
    """Simulation throughput (samples per second), simulate and land in DuckDB."""
    from toolkit.bench import print_table
    from toolkit.bench.simulate import run as run_bench

    print_table(run_bench(tuple(instances or (100_000, 1_000_000))))


@bench_app.command("solve")
def bench_solve(
    instances: Annotated[
        list[int] | None, typer.Option("--instances", "-n", help="Instance counts to time.")
    ] = None,
) -> None:
    """Solve stage: DuckDB bisection and the 50-budget hull sweep vs a numpy bisection."""
    from toolkit.bench import print_table
    from toolkit.bench.solve import run as run_bench

    print_table(run_bench(tuple(instances or (100_000, 1_000_000))))


@bench_app.command("study")
def bench_study() -> None:
    """Seconds per stage of the whole default study."""
    from toolkit.bench import print_table
    from toolkit.bench.study import run as run_bench

    print_table(run_bench())


@bench_app.command("scale")
def bench_scale(
    instances: Annotated[
        list[str] | None,
        typer.Option("--instances", "-n", help="Instance counts, e.g. 1e5 (repeat; 1e5 1e6)."),
    ] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option("--engine", help="duckdb | pyspark://local[2] (repeat; duckdb)."),
    ] = None,
    actions: Annotated[
        int, typer.Option("--actions", "-k", help="K = 5 (b 1..16 doubling) or 8.")
    ] = 8,
    memory_limit: Annotated[
        str, typer.Option("--memory-limit", help="DuckDB's memory limit; it spills beyond.")
    ] = "4GB",
    stages: Annotated[
        str, typer.Option("--stages", help="Comma-separated stages (all but report).")
    ] = "simulate,outcomes,solve,learn,evaluate",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for the runs (a temp folder).")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep each run's folder.")] = False,
) -> None:
    """The pipeline at N instances: seconds, peak memory and spill per stage, growth with N."""
    from toolkit.bench import print_table
    from toolkit.bench.scale import DEFAULT_SIZES, SAMPLES_BY_K, STAGES, header, parse_size
    from toolkit.bench.scale import run as run_bench

    try:
        sizes = tuple(parse_size(text) for text in instances or ()) or DEFAULT_SIZES
    except ValueError as error:
        raise StudyError(str(error)) from None
    stage_list = tuple(s.strip() for s in stages.split(",") if s.strip())
    if actions not in SAMPLES_BY_K or not set(stage_list) <= set(STAGES):
        raise StudyError(
            f"--actions: one of {sorted(SAMPLES_BY_K)}; --stages: some of {', '.join(STAGES)}"
        )
    engines = tuple(engine or ("duckdb",))
    typer.echo(header(engines, actions, memory_limit))
    print_table(
        run_bench(sizes, engines, actions, memory_limit, stage_list, out, keep, log=sys.stderr)
    )


def main() -> None:
    """Entry point: user errors exit 2 with the message, without a traceback."""
    try:
        app(standalone_mode=False)
    except StudyError as error:
        console.print(f"error: {error}", highlight=False, markup=False)
        sys.exit(2)
    except typer.Abort:
        sys.exit(1)
    except typer.TyperException as error:  # usage errors: unknown option, missing argument
        error.show()
        sys.exit(error.exit_code)
