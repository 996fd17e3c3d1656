"""`modelledger audit`: check the event log (and seal its hash chain)."""

from __future__ import annotations

from typing import Annotated

import typer

from adapters.audit_seals import read_seals, record_seal
from modelledger.bootstrap import Ledger
from modelledger.cli_support import (
    counted,
    open_ledger,
    progress_on_stderr,
    verify_projections,
)
from projections.worker import PROJECTIONS
from queries.integrity import LogReport, check_log

audit = typer.Typer(help="Check the event log and the read models built from it.")


@audit.command("verify")
def audit_verify(
    projections: Annotated[
        bool, typer.Option(help="also rebuild each projection into scratch tables and compare")
    ] = True,
) -> None:
    """Positions, each model's versions, every event decodes; then the projections.

    Exit 1 if anything is wrong."""
    ledger = open_ledger(must_exist=True)
    try:
        report = _checked_log(ledger)
        _print_log_report(report)
        consistent = verify_projections(ledger, PROJECTIONS) if projections else True
    finally:
        ledger.close()
    if not (report.sound and consistent):
        raise typer.Exit(1)


@audit.command("seal")
def audit_seal() -> None:
    """Check the log, then record the digest of its hash chain at the head: later
    audits catch any change at or before it. Keep the printed digest elsewhere too.

    Exit 1 (and no seal) if the log does not pass."""
    ledger = open_ledger(must_exist=True)
    try:
        report = _checked_log(ledger)
        _print_log_report(report)
        if not report.sound:
            raise typer.Exit(1)
        seal = record_seal(ledger.write_engine, report.head, report.digest)
    finally:
        ledger.close()
    typer.echo(f"sealed at position {seal.position} ({seal.sealed_at}): {seal.digest}")


def _checked_log(ledger: Ledger) -> LogReport:
    with progress_on_stderr() as progress:
        task = progress.add_task("log", total=ledger.event_log.head())
        return check_log(
            ledger.event_log,
            gaps_allowed=ledger.event_log.gaps_possible,
            seals=read_seals(ledger.write_engine),
            progress=lambda n: progress.advance(task, n),
        )


def _print_log_report(report: LogReport) -> None:
    models = counted(report.models, "model")
    typer.echo(f"log: {report.events} events of {models}, head {report.head}")
    if report.gaps:
        kind = (
            "harmless on PostgreSQL (rolled-back sequence values)"
            if report.gaps_allowed
            else "LOST"
        )
        typer.echo(f"  {report.gaps} missing positions, {kind}")
        for example in report.gap_examples:
            typer.echo(f"    {example}")
    for problem in report.problems:
        typer.echo(f"  PROBLEM {problem}")
    if report.problem_count > len(report.problems):
        typer.echo(f"  ... {report.problem_count - len(report.problems)} more problems")
    typer.echo(f"log: hash chain digest at position {report.head}: {report.digest}")
    if report.latest_held:
        seal = report.latest_held
        typer.echo(
            f"log: {report.seals_held} {'seal holds' if report.seals_held == 1 else 'seals hold'}, "
            f"the latest at position {seal.position} "
            f"({seal.sealed_at}): {seal.digest}"
        )
    typer.echo("log: sound" if report.sound else "log: NOT SOUND")
