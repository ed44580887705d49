"""`crossgroup register`: the record of processing activities (GDPR art. 30)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from crossgroup.cli.options import PipelineOption, input_file_option


def register(
    pipeline: PipelineOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for register.md and register.json (default: print)."),
    ] = None,
    registry: Annotated[
        Path | None,
        input_file_option(
            "--registry", "registry", "Public registry: controllers' display names from it."
        ),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            exists=True,
            file_okay=False,
            help="The processor's key directory: adds the privacy budget its DP releases spent.",
        ),
    ] = None,
) -> None:
    """Write the record of processing activities from the configuration and the code.

    Controllers, categories of data (the export allow-list and the returned columns),
    recipients, retention, k and k_aggregate, how group-wide figures are released (DP mode:
    mechanism, epsilon, delta, budget), the crypto suite and the art. 22 statement are all
    read from the pipeline file and the code's constants, so the register changes when the
    processing does. --keys adds the epsilon spent, from the processor's privacy-budget
    ledger. Without --out the Markdown is printed.

    Example: crossgroup register --pipeline pipelines/group.toml --out register
    """
    from crossgroup.config import load_group, pipelines_dir
    from crossgroup.crypto.keys import load_registry
    from crossgroup.io import staged_output
    from crossgroup.report.register import build_register, register_files

    path = pipeline or pipelines_dir() / "group.toml"
    reg = build_register(
        load_group(path),
        pipeline_path=path,
        registry=load_registry(registry) if registry is not None else None,
        party_dir=keys,
    )
    files = register_files(reg)
    if out is None:
        typer.echo(files["register.md"], nl=False)
        return
    with staged_output(out) as stage:
        for name, text in files.items():
            (stage / name).write_text(text, encoding="utf-8")
    Console().print(f"Wrote {escape(str(out / 'register.md'))} and register.json")
