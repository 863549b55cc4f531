"""The ``[engine] url`` setting, parsed: no DuckDB, Ibis or Arrow, so a study file is checked
(``stl validate``) without loading them. ``toolkit.db`` opens the engine it names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineURL:
    """A parsed engine setting: ``duckdb`` or ``pyspark://MASTER``."""

    kind: str
    master: str | None = None

    @property
    def separate(self) -> bool:
        """Whether the core queries run outside the DuckDB record."""
        return self.kind != "duckdb"


def parse_engine_url(url: str) -> EngineURL:
    """``duckdb`` (or ``duckdb://``) or ``pyspark://MASTER`` (``pyspark://`` is local[2])."""
    text = url.strip()
    if text in ("duckdb", "duckdb://"):
        return EngineURL("duckdb")
    if text.startswith("pyspark://") or text == "pyspark":
        master = text.removeprefix("pyspark").removeprefix("://") or "local[2]"
        return EngineURL("pyspark", master)
    raise ValueError(
        f"unknown engine {url!r}: use 'duckdb' or 'pyspark://MASTER' "
        "(e.g. pyspark://local[2], pyspark://spark://host:7077)"
    )


__all__ = ["EngineURL", "parse_engine_url"]
