"""`crossgroup evaluate`: score person resolution and segments against synthetic ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from crossgroup.cli.options import EngineOption, PipelineOption, TaxonomyOption, load_pipeline
from crossgroup.errors import CheckFailed


def evaluate(
    synth: Annotated[
        Path, typer.Option("--synth", help="Folder written by `crossgroup synth` (truth.parquet).")
    ],
    exports: Annotated[
        Path, typer.Option("--exports", help="Inbox folder of export packages (.cgpkg).")
    ],
    keys: Annotated[
        Path,
        typer.Option(
            "--keys", help="The whole demo KEYDIR (processor/ and one folder per maison)."
        ),
    ],
    pipeline: PipelineOption = None,
    taxonomy: TaxonomyOption = None,
    engine: EngineOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the full figures as JSON here.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit with code 1 (not 2 or 3: nothing was refused) when a link-quality "
            "target is missed.",
        ),
    ] = False,
) -> None:
    """Pairwise link precision/recall and segment agreement (ARI) on synthetic data.

    Opens the export packages as the processor, runs resolution and segmentation on the
    processor's engine (--engine, as for `crossgroup process`), and maps maison_refs back to
    the truth with each maison's keys. For synthetic data only: it needs every maison's local
    secret. Targets: precision >= 99.9%, recall >= 99% of the links recoverable from the
    exported identifiers.

    Example: crossgroup evaluate --synth synth --exports inbox --keys keys --out eval.json
    """
    from crossgroup.config import load_taxonomy
    from crossgroup.group.evaluate import PRECISION_TARGET, RECALL_TARGET, evaluate_exports
    from crossgroup.io import staged_output

    group = load_pipeline(pipeline, engine)
    result = evaluate_exports(synth, exports, keys, group=group, taxonomy=load_taxonomy(taxonomy))
    links, seg = result["links"], result["segments"]
    lines = [
        f"maisons: {', '.join(result['maisons'])} (as of {result['as_of']})",
        f"records: {links['records']:,}  persons resolved: {result['match']['persons']:,}  "
        f"untraceable records: {links['unmapped_records']:,}",
        f"link precision: {links['precision']:.5f} (target {PRECISION_TARGET})  "
        f"[{links['correct_links']:,} of {links['predicted_links']:,} links]",
        f"link recall (recoverable): {links['recall_recoverable']:.5f} (target {RECALL_TARGET})  "
        f"[{links['recovered_links']:,} of {links['recoverable_links']:,} links]",
        f"link recall (all true links): {links['recall_all_true_links']:.5f}  "
        f"[{links['true_links']:,} true links]",
        f"segments: {seg['n_segments']}  silhouette: {seg['quality']['silhouette']:.3f}  "
        f"stability ARI: {seg['quality']['stability_ari']:.3f}",
        f"segment vs planted archetype ARI: {seg['adjusted_rand_index']:.3f} "
        f"over {seg['persons']:,} persons",
        "targets met" if links["meets_targets"] else "TARGETS MISSED",
    ]
    for line in lines:
        typer.echo(line)
    if out is not None:
        with staged_output(out.parent if str(out.parent) else Path(".")) as staging:
            (staging / out.name).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        typer.echo(f"figures written to {out}")
    if check and not links["meets_targets"]:
        raise CheckFailed(
            f"link-quality targets missed (precision {links['precision']:.5f}, target "
            f"{PRECISION_TARGET}; recall {links['recall_recoverable']:.5f}, target {RECALL_TARGET})"
        )
