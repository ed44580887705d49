"""The export's rules as SQL builders and pure functions (DESIGN §4.3, §5.1-5.2).

Shared by the export, the access request (which shows one customer exactly what the export
computes) and the erasure package; each builder returns SQL or a `Step` and runs nothing.

Rules chosen here (documented in docs/input-contract.md and the export summary):
- Eligible: `cross_group_consent` is true, `restricted` is not true, and the consent was
  recorded at or before the end of the as-of day (UTC). A null `consent_updated_at` does not
  count: a consent that cannot be dated cannot be shown to have been in force at as-of.
- The consent snapshot in the manifest is the end of the as-of day (UTC): the instant the
  consent state above is taken at, which reveals no customer's own timestamp.
- Window: purchase date (UTC) in (as-of − 3 years, as-of]; 29 Feb minus 3 years is 28 Feb.
  Rows dated after as-of are dropped and counted, never exported: a re-run for a past as-of
  on today's extract legitimately contains them.
- Exported customers: eligible customers with at least one purchase in the window.
- Categories: a purchase's category label is NFC-normalized, its whitespace runs collapsed
  to one space and trimmed before the lookup in the maison's map (so "Bagues " maps as
  "Bagues"); a blank label counts as missing. Unmapped rows go to the sector's catch-all.
- Two summaries. The package's manifest is readable by anyone holding the file, so its
  `summary` carries only counts of what is inside the package (`manifest_summary`):
  exported customers, identities with each token, activity rows, unmapped category rows.
  The full summary (drop reasons, placeholder and CRM-level counts, unmapped labels, EUR
  total) stays at the maison: on the console and in `<package>.summary.json` beside the
  package, which is never to be sent with it.
- Unmapped labels are free text from the CRM ("Cadeau pour Mme ..."), so even the local
  summary names a label only when it is on the rows of more than
  `placeholder_max_customers` distinct exported customers (the same line between a shared
  value and one person's value as the placeholder guard), does not look like an email or
  phone number, and is not equal to an input customer_id or order_id; every other label is
  only counted (labels and rows) under `withheld`.
- Amounts: a NaN or infinite input amount is refused by input loading; an amount that
  overflows once converted to EUR and summed is refused here (InputError), and the payload
  check refuses any non-finite number as a last gate.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from datetime import time as dtime

import polars as pl

from crossgroup.config import FxTable, MaisonConfig
from crossgroup.contracts import EXPORT, WINDOW_YEARS
from crossgroup.crypto.keys import PartyKeys
from crossgroup.engine import Step
from crossgroup.errors import InputError, SecurityError

# whitespace runs collapsed to one space (same class in RE2 and Python `re`)
_WHITESPACE = r"[\t\n\v\f\r \u00a0]+"
_WHITESPACE_RE2 = r"[\t\n\v\f\r \x{00A0}]+"


def window_start(as_of: date) -> date:
    """The exclusive start of the window: as-of minus 3 calendar years (29 Feb -> 28 Feb)."""
    if as_of.year - WINDOW_YEARS < 1:  # the CLI refuses such dates first (cli/options.py)
        raise InputError(f"as-of {as_of}: its {WINDOW_YEARS}-year window starts before year 1")
    try:
        return as_of.replace(year=as_of.year - WINDOW_YEARS)
    except ValueError:
        return as_of.replace(year=as_of.year - WINDOW_YEARS, day=28)


def consent_snapshot(as_of: date) -> datetime:
    """The instant consent is read at: the last microsecond of the as-of day, UTC."""
    return datetime.combine(as_of, dtime.max, tzinfo=UTC)


def _date(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def _str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def normalize_category(label: str | None) -> str | None:
    """A maison category label as looked up in its map: NFC, whitespace collapsed, trimmed.

    A blank label is None (missing). `category_sql` is the same rule in SQL.
    """
    if label is None:
        return None
    text = re.sub(_WHITESPACE, " ", unicodedata.normalize("NFC", label)).strip(" ")
    return text or None


def category_sql(column: str) -> str:
    """`normalize_category` in DuckDB SQL, for a VARCHAR column expression."""
    return (
        f"nullif(trim(regexp_replace(nfc_normalize({column}), {_str(_WHITESPACE_RE2)}, ' ', "
        "'g')), '')"
    )


def customer_status_step(as_of: date) -> Step:
    """Each customer's eligibility, or the first reason it is dropped (DROP_REASONS order)."""
    return Step(
        "customer_status",
        f"""SELECT customer_id, CASE
              WHEN cross_group_consent IS NOT TRUE THEN 'no_consent'
              WHEN restricted IS TRUE THEN 'restricted'
              WHEN consent_updated_at IS NULL THEN 'consent_time_unknown'
              WHEN consent_updated_at >= {_date(as_of)} + INTERVAL 1 DAY
                THEN 'consent_after_as_of'
              ELSE 'eligible' END AS status
            FROM customers""",
    )


def _window_case(as_of: date) -> str:
    day = "CAST(purchased_at AS DATE)"
    return (
        f"CASE WHEN {day} > {_date(as_of)} THEN 'future_dated' "
        f"WHEN {day} <= {_date(window_start(as_of))} THEN 'before_window' "
        "ELSE 'in_window' END"
    )


def _with_category_lookup() -> str:
    """A WITH clause: each distinct raw category label, normalized and mapped (NULL group
    category: unmapped). Labels are normalized once per distinct label (a few dozen), not once
    per purchase row. Inline, not a table: the one column is cheap to read again."""
    return f"""WITH category_lookup AS (
              SELECT d.raw, {category_sql("d.raw")} AS category, m.group_category
              FROM (SELECT DISTINCT category AS raw FROM purchases) d
              LEFT JOIN category_map m ON m.category = {category_sql("d.raw")}
            )"""


def purchase_counts_sql(as_of: date) -> str:
    """Purchase rows by window position, their customer's status and unmapped label (one pass).

    Every figure of the purchase and unmapped-category summaries comes from this small table.
    Unmapped rows are also counted per customer (`customer_id`, NULL on mapped rows), so a
    label's distinct customers are counted here too, without a distinct aggregate.
    """
    unmapped = "l.group_category IS NULL"
    return f"""{_with_category_lookup()}
               SELECT {_window_case(as_of)} AS window,
                 coalesce(c.status, 'unknown_customer') AS customer,
                 {unmapped} AS unmapped,
                 CASE WHEN {unmapped} THEN l.category END AS category,
                 CASE WHEN {unmapped} THEN p.customer_id END AS customer_id,
                 count(*) AS rows
               FROM purchases p LEFT JOIN customer_status c USING (customer_id)
               LEFT JOIN category_lookup l ON l.raw IS NOT DISTINCT FROM p.category
               GROUP BY ALL"""


def _export_rows_sql(as_of: date, catch_all: str) -> str:
    """In-window purchases of eligible customers, mapped to group categories and EUR."""
    return f"""{_with_category_lookup()}
            SELECT p.customer_id, p.order_id,
              CAST(date_trunc('month', CAST(p.purchased_at AS DATE)) AS DATE) AS month,
              coalesce(l.group_category, {_str(catch_all)}) AS group_category,
              p.channel, p.amount * fx.eur_per_unit AS amount_eur
            FROM purchases p
            JOIN customer_status c ON c.customer_id = p.customer_id AND c.status = 'eligible'
            JOIN fx_rates fx ON fx.currency = p.currency
            LEFT JOIN category_lookup l ON l.raw IS NOT DISTINCT FROM p.category
            WHERE CAST(p.purchased_at AS DATE) > {_date(window_start(as_of))}
              AND CAST(p.purchased_at AS DATE) <= {_date(as_of)}"""


# Lines below this many EUR are summed in fixed point (DECIMAL(18, 6) lines, a 128-bit sum):
# exact, so a cell's amount does not depend on the order DuckDB's threads add its lines in.
# A cell holding a larger (absurd) line is summed in floating point, which the export's
# finiteness check refuses when it overflows.
_EXACT_SUM_BELOW = 1e12


def activity_step(as_of: date, catch_all: str) -> Step:
    """One row per customer x month x group category x channel: distinct orders, net EUR.

    Aggregated straight from the purchases: the exported lines are read once, never stored.
    Amounts are summed exactly and rounded to the cent, half away from zero. Two levels, per
    order and then per cell, instead of `count(DISTINCT order_id)`: the distinct count is
    then a plain count, where DuckDB would aggregate the lines twice and join the results
    (about 1.5x the time and twice the hash tables, which spill at 10M+ lines). Fixed-point
    sums are exact, so summing per order first gives the same cents.
    """
    exact = f"abs(amount_eur) < {_EXACT_SUM_BELOW}"
    return Step(
        "activity_by_customer",
        f"""SELECT customer_id, month, group_category, channel,
              CAST(count(*) AS INTEGER) AS orders,
              CASE WHEN bool_and(exact_lines)
                THEN CAST(round(sum(exact_eur), 2) AS DOUBLE)
                ELSE sum(float_eur) END AS amount_eur
            FROM (
              SELECT customer_id, month, group_category, channel, order_id,
                bool_and({exact}) AS exact_lines,
                sum(CAST(CASE WHEN {exact} THEN amount_eur END AS DECIMAL(18, 6))) AS exact_eur,
                sum(amount_eur) AS float_eur
              FROM ({_export_rows_sql(as_of, catch_all)})
              GROUP BY customer_id, month, group_category, channel, order_id
            )
            GROUP BY customer_id, month, group_category, channel""",
    )


def payload_sql() -> dict[str, str]:
    """The allow-listed tables (contracts.EXPORT), keyed by maison_ref and sorted by it (no
    CRM order)."""
    activity = ", ".join(f"a.{c}" for c in EXPORT["activity"].names if c != "maison_ref")
    return {
        "identities": f"SELECT {EXPORT['identities'].sql_list()} FROM identity_map "
        "ORDER BY maison_ref",
        "activity": f"""SELECT i.maison_ref, {activity}
                       FROM activity_by_customer a JOIN identity_map i USING (customer_id)
                       ORDER BY i.maison_ref, a.month, a.group_category, a.channel""",
    }


def fx_frame(fx: FxTable) -> pl.DataFrame:
    return pl.DataFrame(
        {"currency": list(fx.eur_per_unit), "eur_per_unit": list(fx.eur_per_unit.values())},
        schema={"currency": pl.String, "eur_per_unit": pl.Float64},
    )


def category_frame(config: MaisonConfig) -> pl.DataFrame:
    """The maison's map keyed by normalized label; two labels that normalize alike must agree."""
    mapping: dict[str, str] = {}
    for label, group_category in config.categories.items():
        key = normalize_category(label)
        if key is None:
            raise InputError(f"maison {config.id}: a category label in the map is blank")
        if mapping.setdefault(key, group_category) != group_category:
            raise InputError(
                f"maison {config.id}: category labels that differ only in spacing or Unicode "
                f"form map to different group categories ({key!r})"
            )
    return pl.DataFrame(
        {"category": list(mapping), "group_category": list(mapping.values())},
        schema={"category": pl.String, "group_category": pl.String},
    )


def check_keys(keys: PartyKeys, maison_id: str) -> tuple[str, str]:
    """The processor to seal for and the matching-key id, refusing another party's keys."""
    if keys.party_id != maison_id or keys.role != "maison":
        raise SecurityError(
            f"the keys directory belongs to {keys.role} {keys.party_id!r}, not maison {maison_id!r}"
        )
    if keys.matching is None or keys.local_secret is None:
        raise SecurityError(
            f"the keys directory of {maison_id!r} holds no matching or local secret"
        )
    registry_key_id = keys.registry.matching_key_id
    if keys.matching.key_id != registry_key_id:
        raise SecurityError(
            f"matching key {keys.matching.key_id} of {maison_id!r} is not the registry's "
            f"current key {registry_key_id}"
        )
    return keys.registry.processor_id, keys.matching.key_id
