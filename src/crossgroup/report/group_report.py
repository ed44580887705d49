"""The processor's one-page group report: segment mix chart plus its tables, all thresholded."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from crossgroup.report import charts
from crossgroup.report.noise_panel import noise_panel, noise_sentence
from crossgroup.report.template import frame_table, page


def group_report_html(
    *,
    batch_id: str,
    as_of: str,
    cells: pl.DataFrame,
    loss: pl.DataFrame,
    quality: pl.DataFrame,
    timings: Mapping[str, float],
    model: Mapping[str, Any] | None = None,
    labels: Mapping[int, str] | None = None,
    participating_maisons: Sequence[str] = (),
    absent_maisons: Sequence[str] = (),
    privacy_budget: Mapping[str, Any] | None = None,
) -> str:
    """A one-page processor report: who took part, segment mix chart plus the tables, all
    counts thresholded. `model`: what the batch did with the series' segment model
    (`SeriesOutcome.audit`); `privacy_budget`: what a DP release spent
    (`run_record.stage_budget`), shown with the noisy figures' intervals."""
    mix = cells.filter((pl.col("table") == "segment_mix") & ~pl.col("suppressed"))
    chart = charts.bar_chart(
        "group-segment-mix",
        mix.get_column("row_key").to_list(),
        {"Whole batch": mix.get_column("share").to_list()},
        title="Segment mix, whole batch",
        width=8.0,
        alt="; ".join(f"{r} {s:.0%}" for r, s in mix.select("row_key", "share").iter_rows()),
    )
    series = (
        [_html_table("Segment model across batches", _model_rows(model, labels or {}))]
        if model
        else []
    )
    rule = "Every count covers at least k_aggregate persons or is suppressed."
    noise = []
    if privacy_budget:
        b = privacy_budget
        refitted = b["definitions"] == "batch"
        rule = noise_sentence(
            b["epsilon"], b["delta"], b["margin_95"], None, own=False, refitted=refitted
        ) + (
            " The processing figures (what k-anonymity cost, model quality and drift) are exact"
            " and stay with the processor."
        )
        noise = [noise_panel(cells, rule), _html_table("Privacy budget", _budget_rows(b))]
    parts = [
        f"<header class='page'><h1>Group processing report</h1>"
        f"<p>Batch {html.escape(batch_id)}, as of {html.escape(as_of)}. {html.escape(rule)}</p>"
        f"{_participation(participating_maisons, absent_maisons)}</header>",
        f"<section class='panel wide'>{chart.svg}</section>",
        *noise,
        _html_table("What k-anonymity cost", loss),
        _html_table("Segment model quality", quality),
        *series,
        # threshold mode's cells are exact: no margin column to show
        _html_table("Batch aggregates", cells if privacy_budget else cells.drop("margin")),
        _html_table(
            "Stage timings (seconds)",
            pl.DataFrame(
                {"stage": list(timings), "seconds": [round(v, 3) for v in timings.values()]}
            ),
        ),
    ]
    return page(f"crossgroup group report, batch {batch_id}", "\n".join(parts))


def _model_rows(model: Mapping[str, Any], labels: Mapping[int, str]) -> pl.DataFrame:
    """Whether the batch reused the saved model or refitted it, why, and which segments are
    new or retired: so an analyst knows whether "segment 3" means what it meant."""

    def named(ids) -> str:
        return "; ".join(f"{i} {labels.get(int(i), '')}".strip() for i in ids) or "none"

    drift = model.get("drift") or {}
    rows = [
        ("model", "reused" if model["reused"] else "refitted"),
        ("why", model["reason"]),
        ("fitted as of", model.get("fitted_as_of") or ""),
        ("digest", (model.get("digest") or "not saved")[:16]),
        ("new segments", named(model.get("new_segments", []))),
        ("retired segments", "; ".join(map(str, model.get("retired_segments", []))) or "none"),
    ]
    if drift:
        rows += [
            ("segment-mix PSI", f"{drift['mix_psi']:.3f}"),
            ("mean distance to centre, change", f"{drift['distance_growth']:+.1%}"),
        ]
    if model.get("not_saved"):
        rows.append(("not saved", model["not_saved"]))
    return pl.DataFrame(rows, schema=["what", "value"], orient="row")


def _budget_rows(spent: Mapping[str, Any]) -> pl.DataFrame:
    """Per recipient: the epsilon this release spent and its total within a year of it."""
    return pl.DataFrame(
        [
            (r, f"{e:.3g}", f"{spent['spent_within_a_year'][r]:.3g}",
             f"{spent['epsilon_budget_per_year']:.3g}")
            for r, e in sorted(spent["spent"].items())
        ],
        schema=["recipient", "epsilon (this release)", "within a year", "yearly budget"],
        orient="row",
    )  # fmt: skip


def _participation(participating: Sequence[str], absent: Sequence[str]) -> str:
    """Which maisons took part in the batch, and which are absent (they get no return)."""
    if not participating and not absent:
        return ""
    took = ", ".join(participating) or "none"
    line = f"Maisons taking part: {html.escape(took)}."
    if absent:
        line += f" Absent (no return for this batch): {html.escape(', '.join(absent))}."
    return f"<p class='participation'>{line}</p>"


def _html_table(title: str, frame: pl.DataFrame) -> str:
    return f"<section class='panel'><h2>{html.escape(title)}</h2>{frame_table(frame)}</section>"
