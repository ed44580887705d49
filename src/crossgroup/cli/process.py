"""`crossgroup process`: the group processor turns a batch of export packages into returns."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crossgroup.cli.options import (
    EngineOption,
    PassphraseEnvOption,
    PipelineOption,
    ProcessorKeysOption,
    TaxonomyOption,
    folder_option,
    load_keys,
    load_pipeline,
)
from crossgroup.text import printable


def process(
    inbox: Annotated[Path, folder_option("--inbox", "Folder of export packages (.cgpkg).")],
    keys: ProcessorKeysOption,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for returns/, reports/ and audit.jsonl.")
    ],
    pipeline: PipelineOption = None,
    taxonomy: TaxonomyOption = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Set invalid packages aside (named in the summary and audit) instead of "
            "refusing the whole batch.",
        ),
    ] = False,
    allow_missing: Annotated[
        bool,
        typer.Option(
            "--allow-missing",
            help="Run the batch without the pipeline's maisons that sent no package (they "
            "get no return; every output names who took part) instead of refusing it; as "
            "\\[batch] allow_missing = true.",
        ),
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--work-dir",
            help="Parent folder of the private working directory (default: system temp).",
        ),
    ] = None,
    passphrase_env: PassphraseEnvOption = None,
    engine: EngineOption = None,
) -> None:
    """Verify, decrypt, match, segment and generalize a batch; seal one return per maison.

    Every package is verified before anything is decrypted; plaintext exists only in a
    private working directory removed at the end. Each maison gets back only its own
    customers, k-anonymous; the group gets thresholded reports and one audit-log entry.
    A maison of the pipeline whose package is not in the inbox refuses the batch (exit 2)
    unless --allow-missing.

    Example: crossgroup process --inbox inbox --keys keys/processor --out processed
    """
    from crossgroup.config import load_taxonomy
    from crossgroup.group.pipeline import process_batch

    group = load_pipeline(pipeline, engine)
    if allow_missing:
        group = dataclasses.replace(group, allow_missing=True)
    party = load_keys(keys, passphrase_env)
    err = Console(stderr=True)
    result = process_batch(
        inbox,
        party,
        out,
        group=group,
        skip_invalid=skip_invalid,
        taxonomy=load_taxonomy(taxonomy),
        work_parent=work_dir,
        progress=lambda line: err.print(f"[dim]{escape(line)}[/dim]"),
    )
    console = Console()
    c = result.counts
    if c.get("erasure_packages"):
        console.print(
            f"Erasures applied: {c['erasure_packages']} package(s), "
            f"{c['erased_customers_listed']} customer(s) listed, "
            f"{c['suppression_entries_added']} new suppression entries, "
            f"{c['retained_packages_deleted']} retained input(s) deleted"
        )
    if c["packages"] == 0:
        console.print(f"No export package: no return written. Audit head {result.audit_head[:16]}")
        return
    console.print(summary_table(result))
    for name, reason in result.skipped:
        # an inbox file name is anyone's free text: shown only through printable
        console.print(
            f"[yellow]Skipped[/yellow] {escape(printable(name))}: {escape(printable(reason))}"
        )
    for maison in c["absent_maisons"]:
        console.print(f"[yellow]Absent[/yellow] {escape(maison)}: took no part, gets no return")
    for maison, path in sorted(result.returns.items()):
        console.print(f"Return for {escape(maison)}: {escape(str(path))}")
    console.print(f"Reports: {escape(str(out / 'reports'))}")
    console.print(f"Audit log: {escape(str(result.audit_log))} (head {result.audit_head[:16]})")


def summary_table(result) -> Table:
    """Counts and stage timings: no identifier of any kind."""
    c = result.counts
    table = Table(title="crossgroup process", show_header=True)
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("packages processed", str(c["packages"]))
    table.add_row("packages skipped", str(c["skipped"]))
    table.add_row("maisons taking part", ", ".join(c["participating_maisons"]))
    table.add_row("maisons absent", ", ".join(c["absent_maisons"]) or "none")
    table.add_row("persons resolved", f"{c['persons']:,}")
    table.add_row("segments", str(c["segments"]))
    share = c["persons_generalized"] / max(c["persons"], 1)
    table.add_row(
        "persons with a coarsened attribute", f"{c['persons_generalized']:,} ({share:.1%})"
    )
    table.add_row("persons withheld (k-anonymity)", f"{c['persons_withheld']:,}")
    table.add_row("aggregate cells suppressed (group)", str(c["aggregate_cells_suppressed"]))
    if spent := result.privacy_budget:
        most = max(spent["spent_within_a_year"].values())
        table.add_row(
            "group figures: differential privacy",
            f"epsilon {spent['epsilon']:.3g} per recipient, ±{spent['margin_95']:.0f} (95 %)",
        )
        table.add_row(
            "privacy budget used within a year",
            f"{most:.3g} of {spent['epsilon_budget_per_year']:.3g} (most spent by a recipient)",
        )
    for maison, rows in sorted(c["returned_rows"].items()):
        table.add_row(f"rows returned to {maison}", f"{rows:,}")
    for stage, seconds in result.timings.items():
        table.add_row(f"time: {stage}", f"{seconds:.2f} s")
    table.add_row("time: total", f"{sum(result.timings.values()):.2f} s")
    return table
