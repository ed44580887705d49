"""Per-person features from the joined activity of every maison (DESIGN §6), in Polars.

Pure and vectorized: lazy frames in, one row per person out. Spend shares are shares of
positive net spend: each group (sector, category, channel, season) is netted first, negative
nets count as zero, so returns never give a share below 0 or above 1, and a person whose net
spend is zero or negative everywhere has all shares 0.
"""

from __future__ import annotations

import re
from datetime import date

import polars as pl

from crossgroup.config import Taxonomy
from crossgroup.errors import InputError

BASE_COLUMNS = (
    "person_id",
    "n_maisons",
    "total_spend_eur",
    "orders",
    "active_months",
    "recency_months",
    "tenure_months",
    "online_share",
    "boutique_share",
    "q4_share",
    "n_sectors",
)


def sector_slug(name: str) -> str:
    """A column-safe slug: "Watches & Jewelry" -> "watches_jewelry"."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise InputError(f"taxonomy name {name!r} has no letters or digits to name a column")
    return slug


def sector_columns(taxonomy: Taxonomy) -> list[str]:
    return [f"share_{sector_slug(s)}" for s in taxonomy.sector_names]


def category_columns(taxonomy: Taxonomy) -> list[str]:
    return [f"cat_{sector_slug(c)}" for c in taxonomy.category_sector()]


def _month_index(col: str | pl.Expr) -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.dt.year().cast(pl.Int32) * 12 + expr.dt.month().cast(pl.Int32) - 1


def _positive_shares(frame: pl.DataFrame, nets: list[str], names: list[str]) -> pl.DataFrame:
    """Replace net columns by their shares of the positive total (0 where nothing positive).

    The total is materialized once: written inline, every share would recompute the sum over
    all the nets (quadratic in the number of categories).
    """
    total = "__positive_total"
    frame = frame.with_columns(pl.col(n).clip(lower_bound=0.0) for n in nets)
    frame = frame.with_columns(pl.sum_horizontal(nets).alias(total))
    return frame.with_columns(
        pl.when(pl.col(total) > 0).then(pl.col(n) / pl.col(total)).otherwise(0.0).alias(name)
        for n, name in zip(nets, names, strict=True)
    ).drop([total, *(n for n in nets if n not in names)])


def person_features(
    person_nodes: pl.LazyFrame,
    activity: pl.LazyFrame,
    *,
    as_of: date,
    taxonomy: Taxonomy,
) -> pl.DataFrame:
    """One row per person_id: value, frequency, recency, breadth, channel, season, affinities.

    Persons without activity keep zero spend and orders, zero shares and null recency/tenure.
    """
    category_sector = taxonomy.category_sector()
    categories = list(category_sector)
    sectors = list(taxonomy.sector_names)
    as_of_month = as_of.year * 12 + as_of.month - 1

    refs = person_nodes.select("maison", "maison_ref", pl.col("person_id").cast(pl.Int64))
    lines = (
        activity.select(
            "maison", "maison_ref", "month", "group_category", "channel", "orders", "amount_eur"
        )
        .join(refs, on=["maison", "maison_ref"], how="inner")
        # An Enum makes the category group-by cheap; unknown categories become null (checked).
        .with_columns(pl.col("group_category").cast(pl.Enum(categories), strict=False))
    )
    per_category = lines.group_by("person_id", "group_category").agg(
        pl.col("amount_eur").sum().alias("net")
    )
    month = _month_index("month")
    amount = pl.col("amount_eur")

    def spend_where(condition: pl.Expr, name: str) -> pl.Expr:
        return pl.when(condition).then(amount).otherwise(0.0).sum().alias(name)

    per_person = lines.group_by("person_id").agg(
        amount.sum().alias("total_spend_eur"),
        pl.col("orders").cast(pl.Int64).sum().alias("orders"),
        month.n_unique().cast(pl.Int32).alias("active_months"),
        (as_of_month - month.max()).clip(lower_bound=0).cast(pl.Int32).alias("recency_months"),
        (as_of_month - month.min()).clip(lower_bound=0).cast(pl.Int32).alias("tenure_months"),
        *[spend_where(pl.col("channel") == ch, f"net_{ch}") for ch in ("online", "boutique")],
        spend_where(~pl.col("channel").is_in(["online", "boutique"]), "net_other"),
        spend_where(pl.col("month").dt.month() >= 10, "net_q4"),
        spend_where(pl.col("month").dt.month() < 10, "net_q1_q3"),
    )
    breadth = refs.group_by("person_id").agg(
        pl.col("maison").n_unique().cast(pl.Int32).alias("n_maisons")
    )
    cat_net, person, persons = pl.collect_all([per_category, per_person, breadth])

    unknown = cat_net["group_category"].null_count()
    if unknown:
        raise InputError(
            "activity column group_category holds values that are not categories of the "
            f"group taxonomy ({unknown} person-category cells)"
        )

    cat_cols = category_columns(taxonomy)
    sec_cols = sector_columns(taxonomy)
    wide = cat_net.pivot(
        on="group_category", index="person_id", values="net", on_columns=categories
    ).select(
        "person_id",
        *[
            pl.col(c).fill_null(0.0).alias(f"n_{col}")
            for c, col in zip(categories, cat_cols, strict=True)
        ],
    )
    # A sector's net is the sum of its categories' nets, netted before clipping.
    wide = wide.with_columns(
        pl.sum_horizontal(
            [
                pl.col(f"n_{cat_col}")
                for c, cat_col in zip(categories, cat_cols, strict=True)
                if category_sector[c] == s
            ]
        ).alias(f"n_{col}")
        for s, col in zip(sectors, sec_cols, strict=True)
    )
    wide = _positive_shares(wide, [f"n_{c}" for c in cat_cols], cat_cols)
    wide = _positive_shares(wide, [f"n_{c}" for c in sec_cols], sec_cols)
    wide = wide.with_columns(
        pl.sum_horizontal([(pl.col(c) > 0).cast(pl.Int32) for c in sec_cols]).alias("n_sectors")
    )

    person = _positive_shares(
        person,
        ["net_online", "net_boutique", "net_other"],
        ["online_share", "boutique_share", "other_share"],
    ).drop("other_share")
    person = _positive_shares(person, ["net_q4", "net_q1_q3"], ["q4_share", "q1_q3"]).drop("q1_q3")

    out = (
        persons.join(person, on="person_id", how="left")
        .join(wide, on="person_id", how="left")
        .with_columns(
            pl.col("total_spend_eur").fill_null(0.0),
            pl.col("orders").fill_null(0),
            pl.col("active_months").fill_null(0),
            pl.col("n_sectors").fill_null(0),
            *[
                pl.col(c).fill_null(0.0)
                for c in ("online_share", "boutique_share", "q4_share", *sec_cols, *cat_cols)
            ],
        )
        .select(*BASE_COLUMNS, *sec_cols, *cat_cols)
        .sort("person_id")
    )
    return out
