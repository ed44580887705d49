"""Purchase lines of a chunk's customer records over the five years before as-of.

Per record: a number of orders (archetype × sector focus × person activity, gamma-Poisson),
an active window (acquisition, sometimes lapse), order days drawn from the archetype's
seasonal curve inside that window, a channel mix drifting online over time, lines per order,
categories (a favourite plus the maison's mix, a few unmapped labels), long-tailed amounts
in the customer's currency (EUR when bought abroad), refunds, and the edge rows an exporter
must handle: exactly on the 3-year boundary, exactly at as-of, and after as-of.

Normal rows avoid the as-of day and the boundary day, so the edge rows are the only ones
whose inclusion depends on comparing at the day's start: (as-of - 3y, as-of] gives the same
rows whether compared as dates or as timestamps.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pyarrow as pa

from crossgroup.config import CHANNELS, FxTable
from crossgroup.synth import world
from crossgroup.synth.identifiers import order_ids
from crossgroup.synth.maisons import MaisonPlan
from crossgroup.synth.persons import PersonChunk

PURCHASE_COLUMNS = (
    "customer_id",
    "order_id",
    "purchased_at",
    "category",
    "amount",
    "currency",
    "channel",
)
ORDERS_SCALE = 1.22  # calibrates the mean to about ten purchase lines per person
FAVOURITE_SHARE = 0.55
OFF_FOCUS = 0.45  # order rate at a maison outside the archetype's favourite sector
_US = 1_000_000
_DAY_US = 86_400 * _US


def amounts_to_decimal(cents: np.ndarray) -> pl.Series:
    """Exact Decimal(12, 2) from integer cents, without a float or Python object per row."""
    words = np.empty((len(cents), 2), np.int64)
    words[:, 0] = cents
    words[:, 1] = -(cents < 0).astype(np.int64)  # two's complement high word
    arr = pa.Array.from_buffers(
        pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words.tobytes())]
    )
    return pl.Series("amount", arr)


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For repeated parents: the parent index of each child and its rank within the parent."""
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return parent, np.arange(len(parent)) - starts[parent]


def _order_days(rng, arch, start, end, days: np.ndarray, boundary: int) -> np.ndarray:
    """Inverse-CDF sampling of order days inside each window, one curve per archetype."""
    out = np.empty(len(arch), np.int64)
    for a, archetype in enumerate(world.ARCHETYPES):
        rows = np.flatnonzero(arch == a)
        if not len(rows):
            continue
        w = world.seasonal_weights(days, archetype)
        w[boundary] = 0.0  # the boundary day only holds the deliberate edge rows
        cdf = np.concatenate([[0.0], np.cumsum(w)])
        lo, hi = cdf[start[rows]], cdf[end[rows] + 1]
        u = lo + rng.random(len(rows)) * (hi - lo)
        out[rows] = np.clip(np.searchsorted(cdf, u, side="right") - 1, start[rows], end[rows])
    return out


def _edge_rows(rng, o_maison, plans, day, secs, boundary: int, n_days: int) -> np.ndarray:
    """Move a few orders per maison exactly onto the 3-year boundary, onto as-of (both at
    midnight) and after as-of; return the mask of moved orders (`day`, `secs` are updated)."""
    special = np.zeros(len(o_maison), bool)
    for p in plans:
        rows = np.flatnonzero(o_maison == p.index)
        if len(rows) < 20:
            continue
        for share, target in (
            (world.BOUNDARY_SHARE, boundary),
            (world.BOUNDARY_SHARE, n_days - 1),
            (world.FUTURE_SHARE, None),
        ):
            k = max(1, int(rng.binomial(len(rows), share)))
            pick = rng.choice(rows[~special[rows]], size=k, replace=False)
            special[pick] = True
            day[pick] = target if target is not None else n_days + rng.integers(0, 90, k)
            secs[pick] = 0 if target is not None else rng.integers(0, 86_400, k)
    return special


def _categories(rng, l_rec, l_maison, plans, n_rec: int) -> np.ndarray:
    """Each line's label (global index over all maisons' labels): the customer's favourite
    category, the maison's mix, or now and then a label the maison's map does not know."""
    label_offset = np.cumsum([0] + [len(p.labels) for p in plans])
    label = np.empty(len(l_rec), np.int64)
    for p in plans:
        rows = np.flatnonzero(l_maison == p.index)
        cum = np.cumsum(p.category_weights)
        favourite = np.searchsorted(cum, rng.random(n_rec) * cum[-1])  # per record
        mix = np.searchsorted(cum, rng.random(len(rows)) * cum[-1])
        local = np.where(rng.random(len(rows)) < FAVOURITE_SHARE, favourite[l_rec[rows]], mix)
        extras = len(p.labels) - p.n_mapped
        unmapped = rng.random(len(rows)) < world.UNMAPPED_SHARE
        local[unmapped] = p.n_mapped + rng.integers(0, extras, int(unmapped.sum()))
        label[rows] = label_offset[p.index] + local
    return label


def generate_purchases(
    rng: np.random.Generator,
    customers: pl.DataFrame,
    persons: PersonChunk,
    plans: list[MaisonPlan],
    as_of: date,
    fx: FxTable,
) -> pl.DataFrame:
    """Purchase lines for every customer record of the chunk, with a private `_maison` column."""
    rec_maison = customers["_maison"].to_numpy().astype(np.int64)
    rec_person = customers["_person"].to_numpy()
    arch = persons.archetype[rec_person].astype(np.int64)
    n_rec = len(rec_maison)
    archs = world.ARCHETYPES
    favourite_sector = [max(a.sector_affinity, key=a.sector_affinity.get) for a in archs]
    focus = np.array(
        [
            [1.0 if p.config.sector == favourite_sector[a] else OFF_FOCUS for p in plans]
            for a in range(len(archs))
        ]
    )
    rate = np.array([a.orders for a in archs])[arch] * focus[arch, rec_maison]
    rate *= ORDERS_SCALE * persons.activity[rec_person] * rng.gamma(3.0, 1 / 3.0, n_rec)
    n_orders = np.maximum(rng.poisson(rate), 1)
    n_orders[rng.random(n_rec) < world.NO_PURCHASE] = 0
    n_orders = np.minimum(n_orders, world.MAX_ORDERS_PER_CUSTOMER)

    days = world.history_days(as_of)
    last_normal = len(days) - 2  # the day before as-of
    boundary = int(
        (np.datetime64(world.shift_years(as_of, -world.EXPORT_YEARS)) - days[0]).astype(int)
    )
    start = np.clip(rng.integers(-730, last_normal - 30, n_rec), 0, last_normal)
    lapsed = rng.random(n_rec) < 0.25
    end = np.where(
        lapsed, start + (rng.random(n_rec) * (last_normal - start)).astype(np.int64), last_normal
    )

    o_rec, seq = _segments(n_orders)
    o_arch = arch[o_rec]
    day = _order_days(rng, o_arch, start[o_rec], end[o_rec], days[:-1], boundary)
    online_mean = np.array([a.online for a in archs])[arch]
    share = rng.beta(online_mean * 6, (1 - online_mean) * 6)  # each customer's own habit
    p_online = np.clip(share[o_rec] * (0.7 + 0.6 * day / len(days)), 0, 0.95)
    p_other = np.array([a.other for a in archs])[o_arch]
    u = rng.random(len(o_rec))
    channel = np.where(u < p_online, 1, np.where(u < p_online + p_other, 2, 0))
    secs = np.select(
        [channel == 0, channel == 1],
        [rng.integers(36_000, 70_200, len(u)), rng.integers(0, 86_400, len(u))],
        rng.integers(32_400, 79_200, len(u)),
    )
    codes = sorted(fx.eur_per_unit)
    home = np.array([codes.index(c.currency) for c in world.COUNTRIES])[persons.country]
    abroad = (channel == 0) & (rng.random(len(u)) < np.array([a.travel for a in archs])[o_arch])
    currency = np.where(abroad, codes.index(world.TRAVEL_CURRENCY), home[rec_person[o_rec]])

    special = _edge_rows(rng, rec_maison[o_rec], plans, day, secs, boundary, len(days))
    o_maison = rec_maison[o_rec]

    lines_per_order = 1 + rng.poisson(np.array([a.basket for a in archs])[o_arch])
    l_order, _ = _segments(lines_per_order)
    l_rec = o_rec[l_order]
    l_maison = rec_maison[l_rec]
    label = _categories(rng, l_rec, l_maison, plans, n_rec)
    price = np.concatenate([p.price_eur for p in plans])[label]
    eur = price * np.exp(
        persons.spend_log[rec_person[l_rec]]
        + world.LINE_PRICE_SIGMA * rng.standard_normal(len(label))
    )
    eur = np.minimum(eur, world.MAX_LINE_EUR)
    l_cur = currency[l_order]
    local_amount = eur / np.array([fx.eur_per_unit[c] for c in codes])[l_cur]
    whole = np.isin(l_cur, [codes.index(c) for c in world.WHOLE_UNIT_CURRENCIES if c in codes])
    cents = np.where(whole, np.round(local_amount) * 100, np.round(local_amount * 100))
    cents = np.maximum(cents, 100).astype(np.int64)
    l_day, l_secs = day[l_order], secs[l_order]

    # Refunds: a later negative line copying an ordinary line (never an edge row).
    refunded = np.flatnonzero(~special[l_order] & (rng.random(len(l_order)) < world.RETURN_SHARE))
    r_day = np.minimum(l_day[refunded] + rng.integers(1, 31, len(refunded)), last_normal)
    r_day = np.where(r_day == boundary, boundary + 1, r_day)
    r_secs = rng.integers(36_000, 70_200, len(refunded))

    oid = pl.repeat(None, len(o_rec), dtype=pl.String, eager=True)
    for p in plans:
        rows = np.flatnonzero(o_maison == p.index)
        owners = persons.person_id[rec_person[o_rec[rows]]]
        oid.scatter(rows, order_ids(p.id, owners, seq[rows], p.order_key))
    line_oid = oid.gather(l_order)
    day_us = days[0].astype(np.int64) * _DAY_US
    all_rows = np.concatenate([np.arange(len(l_order)), refunded])
    timestamp = day_us + np.concatenate([l_day, r_day]) * _DAY_US
    timestamp += np.concatenate([l_secs, r_secs]) * _US
    labels = pl.Series([lab for p in plans for lab in p.labels], dtype=pl.String)
    return pl.DataFrame(
        {
            "customer_id": customers["customer_id"].gather(l_rec[all_rows]),
            "order_id": pl.concat([line_oid, line_oid.gather(refunded) + "-R"]),
            "purchased_at": pl.Series(timestamp).cast(pl.Datetime("us")),
            "category": labels.gather(label[all_rows]),
            "amount": amounts_to_decimal(np.concatenate([cents, -cents[refunded]])),
            "currency": pl.Series(codes).gather(l_cur[all_rows]),
            "channel": pl.Series(CHANNELS).gather(channel[l_order][all_rows]),
            "_maison": pl.Series(l_maison[all_rows], dtype=pl.Int16),
        }
    )
