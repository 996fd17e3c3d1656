"""Aggregating generator outcomes into results, and the Markdown/JSON report."""

from __future__ import annotations

import argparse
import json
import math
import statistics
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.load import COMMANDS
from bench.raw import RawResult


@dataclass
class RunResult:
    backend: str
    round: int
    clients: int
    workers: int
    commands: int = 0
    seconds: float = 0.0
    commands_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    outside_errors: dict[str, int] = field(default_factory=dict)
    generator_cpu_pct: float = 0.0
    server_cpu_pct: float = 0.0
    loop_p50_ms: float = math.nan
    loop_p99_ms: float = math.nan
    per_command: dict[str, dict[str, float]] = field(default_factory=dict)
    failure: str | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


# --------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no data."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def merge(
    result: RunResult, outcomes: list[dict[str, Any]], window: float, server_cpu: float
) -> None:
    per_kind: dict[str, list[float]] = {k: [] for k in COMMANDS}
    errors: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    for out in outcomes:
        for kind, raw in out["latencies"].items():
            per_kind[kind].extend(array("d", raw))
        errors.update(out["errors"])
        outside.update(out["outside_errors"])
    all_lat = sorted(x for values in per_kind.values() for x in values)
    result.commands, result.seconds = len(all_lat), window
    result.commands_per_s = len(all_lat) / window
    result.p50_ms, result.p99_ms = (
        percentile(all_lat, 0.5) * 1e3,
        percentile(all_lat, 0.99) * 1e3,
    )
    result.errors, result.outside_errors = dict(errors), dict(outside)
    result.generator_cpu_pct = 100 * sum(o["cpu_s"] for o in outcomes) / window
    result.server_cpu_pct = 100 * server_cpu / window
    result.per_command = {k: _stats(sorted(v), window) for k, v in per_kind.items()}
    probe = sorted(x for out in outcomes for x in array("d", out.get("probe", b"")))
    result.loop_p50_ms = percentile(probe, 0.5) * 1e3 if probe else math.nan
    result.loop_p99_ms = percentile(probe, 0.99) * 1e3 if probe else math.nan


def _stats(values: list[float], window: float) -> dict[str, float]:
    return {
        "count": len(values),
        "per_s": len(values) / window,
        "p50_ms": percentile(values, 0.5) * 1e3,
        "p99_ms": percentile(values, 0.99) * 1e3,
    }


def errors_by_status(errors: dict[str, int]) -> dict[str, int]:
    """'create:500' -> '500': the table groups by status, JSON keeps the command."""
    grouped: Counter[str] = Counter()
    for key, count in errors.items():
        grouped[key.split(":", 1)[-1]] += count
    return dict(grouped)


def summary(result: RunResult) -> str:
    return (
        f"{result.commands_per_s:,.0f} cmd/s  p50={result.p50_ms:.1f}ms  "
        f"p99={result.p99_ms:.1f}ms  errors={result.error_count}"
    )


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def _error_cell(result: RunResult) -> str:
    if not result.errors:
        return "0"
    detail = ", ".join(f"{k} x{v}" for k, v in sorted(errors_by_status(result.errors).items()))
    return f"{result.error_count} ({detail})"


def markdown_table(runs: list[RunResult]) -> str:
    lines = [
        (
            "| backend | run | clients | workers | commands/s | p50 ms | p99 ms | errors "
            "| generator CPU% | server CPU% | probe p50/p99 ms |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        if r.failure:
            lines.append(
                f"| {r.backend} | {r.round} | {r.clients} | {r.workers} | FAILED "
                "| - | - | - | - | - | - |"
            )
            continue
        lines.append(
            f"| {r.backend} | {r.round} | {r.clients} | {r.workers} | {r.commands_per_s:,.1f} "
            f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} | {_error_cell(r)} "
            f"| {r.generator_cpu_pct:.0f} | {r.server_cpu_pct:.0f} "
            f"| {r.loop_p50_ms:.1f}/{r.loop_p99_ms:.1f} |"
        )
    return "\n".join(lines)


def ratio(runs: list[RunResult], raws: list[RawResult]) -> float | None:
    """Median PostgreSQL commands/s over median raw rows/s."""
    pg = [r.commands_per_s for r in runs if r.backend == "postgres" and not r.failure]
    raw = [r.rows_per_s for r in raws if r.rows_per_s > 0]
    if not pg or not raw:
        return None
    return statistics.median(pg) / statistics.median(raw)


def report(runs: list[RunResult], raws: list[RawResult]) -> str:
    parts = [markdown_table(runs), ""]
    for r in runs:
        if r.outside_errors:
            parts.append(
                f"- {r.backend} run {r.round}: errors outside the window "
                f"(warm-up/drain) {r.outside_errors}"
            )
        if r.failure:
            parts.append(f"- {r.backend} run {r.round} FAILED: {r.failure.splitlines()[0]}")
    for raw in raws:
        parts.append(
            f"- Raw PostgreSQL ceiling run {raw.round} (single-row INSERT+COMMIT, "
            f"one psycopg connection): {raw.rows_per_s:,.1f} rows/s "
            f"({raw.rows:,} rows in {raw.seconds:.1f} s)"
        )
    value = ratio(runs, raws)
    if value is not None:
        parts.append(
            f"- Ratio HTTP commands/s on PostgreSQL / raw ceiling rows/s: **{value:.3f}**"
            " (medians over runs)"
        )
    parts.append(
        "- commands/s, p50 and p99 count only 2xx completions inside the measured "
        "window; CPU% is of one core (200% = both cores)."
    )
    return "\n".join(parts)


def write_json(
    path: Path, args: argparse.Namespace, runs: list[RunResult], raws: list[RawResult]
) -> None:
    config = {k: v for k, v in vars(args).items() if k != "json"}
    payload = {
        "config": config,
        "runs": [asdict(r) for r in runs],
        "raw_ceiling": [asdict(r) for r in raws],
        "ratio_pg_http_over_raw": ratio(runs, raws),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
