"""What the reports say about noisy group-wide figures (DP mode, DESIGN §5.10): one sentence on
what the noise protects, and each noisy count with its 95 % interval. Both the maison's page
and the processor's group report use it, so they say it in the same words."""

from __future__ import annotations

import html

import polars as pl

from crossgroup.report.suppression import TABLE_LABELS
from crossgroup.report.template import frame_table

EPSILON_TERM = (
    "Epsilon (ε)",
    "How much one person can change what is published. With differential privacy, every "
    "group-wide count carries random noise, so any result comes out about as likely whether or "
    "not one person is in the data: at most e^ε times as likely (about 1.6 times for ε = 0.5). "
    "A smaller epsilon means more noise and stronger protection. Each release spends some "
    "epsilon, and a yearly budget caps the total, which also bounds what comparing one month "
    "with the next can tell about the few people who changed.",
)


OWN_FIGURES = (
    " Figures about your own customers are exact, except what they spend at the other "
    "maisons, which is noisy in the same way."
)


REFITTED = (
    " This month the segments or the spend bands were fitted on the batch itself, so the bound "
    "holds given them; other months reuse what an earlier batch saved."
)


def noise_sentence(
    epsilon: float,
    delta: float,
    margin: float,
    k_aggregate: int | None,
    *,
    own: bool = True,
    refitted: bool = False,
) -> str:
    """The page's plain-words statement of the noise (text, not HTML); `own`: the reader has
    customers of its own (a maison), whose figures are exact; `refitted`: the definitions the
    cells count under were fitted on this batch (`Release.definitions`)."""
    floor = f" Counts under {k_aggregate} plus that margin are not shown." if k_aggregate else ""
    floor += REFITTED if refitted else ""
    return (
        f"Group-wide figures carry random noise (differential privacy, epsilon {epsilon:.2g}, "
        f"delta {delta:.0e}): each count is within ±{margin:,.0f} persons of the true count 95 "
        "times in 100, and any one person's presence, absence or change between months shifts "
        "what they show by a bounded, small amount." + floor + (OWN_FIGURES if own else "")
    )


def intervals(cells: pl.DataFrame) -> pl.DataFrame:
    """The published noisy cells with their 95 % interval, in reading order."""
    noisy = cells.filter(
        pl.col("margin").is_not_null() & ~pl.col("suppressed") & (pl.col("table") != "suppression")
    )
    low = (pl.col("persons") - pl.col("margin")).clip(lower_bound=0).round(0).cast(pl.Int64)
    high = (pl.col("persons") + pl.col("margin")).round(0).cast(pl.Int64)
    return noisy.select(
        pl.col("table").replace_strict(TABLE_LABELS, default=pl.col("table")).alias("table"),
        pl.concat_str(
            "row_key",
            pl.when(pl.col("col_key") != "").then(" · " + pl.col("col_key")),
            ignore_nulls=True,
        ).alias("cell"),
        pl.col("persons"),
        pl.format("{} – {}", low, high).alias("95 % interval"),
    )


def noise_panel(cells: pl.DataFrame, sentence: str) -> str:
    """A panel: the sentence, then every published noisy count with its interval."""
    return (
        '<section class="panel" id="noise" aria-labelledby="noise-h">'
        '<h2 id="noise-h">Group-wide figures: noisy, with their 95 % interval</h2>'
        f'<p class="lead">{html.escape(sentence)}</p>{frame_table(intervals(cells))}</section>'
    )
