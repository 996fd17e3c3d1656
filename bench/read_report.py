"""The report of the read benchmark: Markdown tables for stdout, and the results as
JSON. (``bench.report`` is the command benchmark's.)"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from bench.history import HistoryResult
from bench.read_queries import LagResult, QueryResult, SqlResult
from bench.replay import ReplayResult

if TYPE_CHECKING:
    from bench.projections import BenchResult


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _stage_cell(r: ReplayResult) -> str:
    """Where the time went, as % of the runners' summed time until each was done."""
    order = ("read", "decode", "apply", "claim", "commit")
    total = sum(r.finished.values()) or r.seconds
    parts = [
        f"{stage} {100 * r.stages[stage] / total:.0f}%" for stage in order if stage in r.stages
    ]
    if "apply" in r.stages:
        other = total - sum(r.stages.get(stage, 0.0) for stage in order)
        parts.append(f"other {100 * max(0.0, other) / total:.0f}%")
    return ", ".join(parts)


def history_report(h: HistoryResult) -> str:
    types = ", ".join(f"{name} {count:,}" for name, count in h.by_type.items())
    return "\n".join(
        [
            f"- History: {h.events:,} events of {h.models:,} models "
            f"({h.events / max(h.models, 1):.1f} events/model) made by the aggregate and "
            f"appended in {h.insert_calls:,} `insert_events` calls: {h.seconds:.1f} s, "
            f"{h.events_per_s:,.0f} events/s (inserts alone {h.insert_seconds:.1f} s); "
            f"peak RSS {h.peak_rss_mib:,.0f} MiB.",
            f"- Event types: {types}.",
        ]
    )


def replay_table(replays: list[ReplayResult]) -> str:
    lines = [
        "| what | events | seconds | events/s | vs ceiling | bench CPU% | PostgreSQL CPU% "
        "| peak RSS MiB | time split (% of runner wall time) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in replays:
        ratio = "1.00" if r.kind == "ceiling" else f"{r.ratio:.2f}" if r.ratio else "-"
        finished = ""
        if len(r.finished) > 1:
            finished = "; done at " + ", ".join(f"{n} {s:.1f}s" for n, s in r.finished.items())
        lines.append(
            f"| {r.kind}: {r.name} | {r.events:,} | {r.seconds:.1f} | {r.events_per_s:,.0f} "
            f"| {ratio} | {r.cpu_pct:.0f} | {r.database_cpu_pct:.0f} | {r.peak_rss_mib:,.0f} "
            f"| {_stage_cell(r)}{finished} |"
        )
    return "\n".join(lines)


def sql_table(rows: list[SqlResult]) -> str:
    lines = [
        "| question | answered from | runs | p50 ms | p99 ms | same answer |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        same = "-" if r.same_answer is None else "yes" if r.same_answer else "**NO**"
        lines.append(
            f"| {r.question} | {r.variant} | {r.runs} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {same} |"
        )
    return "\n".join(lines)


def query_table(rows: list[QueryResult]) -> str:
    lines = [
        "| query | requests | req/s | p50 ms | p99 ms | errors | server CPU% | PostgreSQL CPU% "
        "| goal p99 |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        goal = "-"
        if r.goal_p99_ms is not None:
            goal = f"< {r.goal_p99_ms:.0f} ms: " + (
                "**no answers**"
                if r.requests == 0 or r.errors
                else ("met" if r.p99_ms < r.goal_p99_ms else "**missed**")
            )
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(r.errors.items())) or "0"
        lines.append(
            f"| {r.name} | {r.requests:,} | {r.per_s:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {errors} | {r.server_cpu_pct:.0f} | {r.database_cpu_pct:.0f} | {goal} |"
        )
    return "\n".join(lines)


def lag_report(lag: LagResult) -> str:
    met = "**no answers**" if lag.errors else ("met" if lag.p99_ms < 100 else "**missed**")
    return (
        f"- Live lag ({lag.commands:,} commands: create/train/complete, {lag.clients} clients, "
        f"each waiting until its command is visible): p50 {lag.p50_ms:.1f} ms, "
        f"p99 {lag.p99_ms:.1f} ms, max {lag.max_ms:.1f} ms (goal p99 < 100 ms: {met}); "
        f"not visible within {lag.timeout_s:.0f} s: {lag.timeouts}; command errors: "
        f"{lag.errors}. Command latency p50/p99 {lag.command_p50_ms:.1f}/"
        f"{lag.command_p99_ms:.1f} ms; one visibility poll p50 {lag.poll_p50_ms:.1f} ms "
        "(the lag's resolution)."
    )


def report(result: BenchResult) -> str:
    parts: list[str] = []
    if result.history is not None:
        parts += [history_report(result.history), ""]
    if result.replay:
        parts += [replay_table(result.replay), ""]
        rebuilds = [r for r in result.replay if r.kind == "rebuild" and r.ratio is not None]
        if rebuilds:
            worst = min(rebuilds, key=lambda r: r.ratio or 0.0)
            verdict = "met" if (worst.ratio or 0.0) >= 0.5 else "**missed**"
            parts.append(
                f"- Goal rebuild >= 50% of the ceiling: {verdict} (lowest: {worst.name}, "
                f"{worst.ratio:.2f})."
            )
        parts.append(
            "- events/s = log positions covered / wall seconds (for several projections "
            "at once: each covers every position). Time split: summed over the runner "
            "threads until each was done; read = select_notifications, decode = "
            "to_domain_event of the events it reads, apply = prepare + process_event + "
            "flush (SQL), claim = "
            "the guarded position update, commit = the rest of the page's transaction, "
            "other = state reads, leases, the live step between rebuild pages."
        )
        parts.append("")
    if result.sql:
        parts += [
            f"Counters/leaderboard tables vs GROUP BY at {result.models_in_catalogue:,} models "
            f"(direct SQL on one connection, after VACUUM ANALYZE, "
            f"{result.vacuum_seconds:.0f} s):",
            "",
            sql_table(result.sql),
            "",
        ]
    if result.queries:
        cfg = result.config
        parts += [
            f"Queries over HTTP at {result.models_in_catalogue:,} models: {cfg['clients']} "
            f"concurrent clients, {cfg['workers']} server worker(s), each kind alone for "
            f"{cfg['warmup']:g} s warm-up + {cfg['duration']:g} s measured:",
            "",
            query_table(result.queries),
            "",
        ]
    if result.as_of_queries:
        parts += [
            f"Queries as_of a past time (the timeline projection, never cached), at "
            f"{result.models_in_catalogue:,} models, the same load:",
            "",
            query_table(result.as_of_queries),
            "",
        ]
    if result.ui_pages:
        parts += [
            f"The web UI's pages (server-rendered HTML, a signed-in session), at "
            f"{result.models_in_catalogue:,} models, the same load:",
            "",
            query_table(result.ui_pages),
            "",
        ]
    if result.lag is not None:
        parts += [lag_report(result.lag), ""]
    parts.append(
        f"- Peak RSS of the benchmark process (whole run): {result.peak_rss_mib:,.0f} MiB."
    )
    if result.failure:
        parts.append(f"- FAILED: {result.failure.splitlines()[0]}")
    return "\n".join(parts)


def write_json(path: Path, result: BenchResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")
