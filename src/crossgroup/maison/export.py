"""The maison export (DESIGN §4.3): consented customers' last 3 years, pseudonymized and sealed.

Stages are SQL builders run by the Engine over the input files, so 10 million purchase lines
are filtered and aggregated out of core; only the per-customer identifiers come up into
Polars, to be normalized and keyed-hashed (distinct values only) and joined back. The payload
is written to a private workdir, checked (`privacy.export_checks`) and sealed for the
processor; the package and its summary reach `out_dir` only when everything succeeded.

Rules chosen here (documented in docs and the summary):
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

import json
import math
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import polars as pl

from crossgroup import audit
from crossgroup.config import CHANNELS, FxTable, MaisonConfig, Taxonomy
from crossgroup.crypto.keys import PartyKeys
from crossgroup.crypto.package import Manifest, seal_package
from crossgroup.engine import Engine, Step
from crossgroup.errors import InputError, SecurityError
from crossgroup.io import private_workdir, staged_output
from crossgroup.maison.export_identities import pseudonymize, tokenizable_identifiers
from crossgroup.maison.export_ledger import party_log, record_export
from crossgroup.maison.inputs import load_customers, load_purchases
from crossgroup.privacy.export_checks import check_export_files, looks_identifying

WINDOW_YEARS = 3
DROP_REASONS = (
    "no_consent",
    "restricted",
    "consent_time_unknown",
    "consent_after_as_of",
    "no_purchase_in_window",
)
# keys of ExportResult.timings, in pipeline order (aggregate also covers writing the payload)
STEPS = ("read", "filter", "aggregate", "normalize", "tokenize", "check", "seal")
# What the cleartext manifest summary may hold: counts of what is in the package, nothing
# else (section -> keys, None for a plain count). See `manifest_summary`.
MANIFEST_SUMMARY_KEYS: dict[str, tuple[str, ...] | None] = {
    "customers": ("exported",),
    "identities": ("with_email_token", "with_phone_token", "without_token"),
    "activity_rows": None,
    "unmapped_categories": ("rows",),
}
MISSING_CATEGORY = "(missing)"
# whitespace runs collapsed to one space (same class in RE2 and Python `re`)
_WHITESPACE = r"[\t\n\v\f\r \u00a0]+"
_WHITESPACE_RE2 = r"[\t\n\v\f\r \x{00A0}]+"


@dataclass(frozen=True)
class ExportResult:
    """The sealed package (its final path in out_dir), its manifest, figures and step times."""

    package_path: Path
    manifest: Manifest
    summary: dict
    timings: dict[str, float] = field(default_factory=dict)


def window_start(as_of: date) -> date:
    """The exclusive start of the window: as-of minus 3 calendar years (29 Feb -> 28 Feb)."""
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


def purchase_counts_sql(as_of: date) -> str:
    """Purchase rows by window position and by their customer's status (one scan)."""
    return f"""SELECT {_window_case(as_of)} AS window, coalesce(c.status, 'unknown_customer')
                 AS customer, count(*) AS rows
               FROM purchases p LEFT JOIN customer_status c USING (customer_id)
               GROUP BY ALL"""


def export_rows_step(as_of: date, catch_all: str) -> Step:
    """In-window purchases of eligible customers, mapped to group categories and EUR.

    Labels are normalized once per distinct label (a few dozen), not once per purchase row.
    """
    return Step(
        "export_rows",
        f"""WITH category_lookup AS (
              SELECT d.raw, {category_sql("d.raw")} AS category, m.group_category
              FROM (SELECT DISTINCT category AS raw FROM purchases) d
              LEFT JOIN category_map m ON m.category = {category_sql("d.raw")}
            )
            SELECT p.customer_id, p.order_id,
              CAST(date_trunc('month', CAST(p.purchased_at AS DATE)) AS DATE) AS month,
              coalesce(l.group_category, {_str(catch_all)}) AS group_category,
              l.group_category IS NULL AS unmapped, l.category AS category,
              p.channel, p.amount * fx.eur_per_unit AS amount_eur
            FROM purchases p
            JOIN customer_status c ON c.customer_id = p.customer_id AND c.status = 'eligible'
            JOIN fx_rates fx ON fx.currency = p.currency
            LEFT JOIN category_lookup l ON l.raw IS NOT DISTINCT FROM p.category
            WHERE CAST(p.purchased_at AS DATE) > {_date(window_start(as_of))}
              AND CAST(p.purchased_at AS DATE) <= {_date(as_of)}""",
    )


def activity_step() -> Step:
    """One row per customer x month x group category x channel: distinct orders, net EUR."""
    return Step(
        "activity_by_customer",
        """SELECT customer_id, month, group_category, channel,
              CAST(count(DISTINCT order_id) AS INTEGER) AS orders,
              CAST(round(sum(amount_eur), 2) AS DOUBLE) AS amount_eur
            FROM export_rows GROUP BY customer_id, month, group_category, channel""",
    )


def unmapped_sql() -> str:
    """Unmapped (normalized) labels: rows and distinct customers; NULL is a missing label."""
    return """SELECT category, count(*) AS rows, count(DISTINCT customer_id) AS customers
              FROM export_rows WHERE unmapped GROUP BY 1
              ORDER BY rows DESC, category NULLS LAST"""


def _labels_equal_to_ids(engine: Engine, labels: list[str]) -> set[str]:
    """The labels equal to an input customer_id or order_id (trimmed): a small probe table
    joined to one scan of each identifier column, as in the payload's identifier check."""
    if not labels:
        return set()
    probe = pl.DataFrame({"label": labels}, schema={"label": pl.String})
    engine.register("_unmapped_labels", probe)
    found: set[str] = set()
    for column, relation in (("customer_id", "customers"), ("order_id", "purchases")):
        hits = engine.to_polars(
            f"SELECT DISTINCT u.label FROM {relation} s "
            f"JOIN _unmapped_labels u ON u.label = trim(s.{column})"
        )
        found |= set(hits["label"])
    return found


def payload_sql() -> dict[str, str]:
    """The two allow-listed tables, keyed by maison_ref and sorted by it (no CRM order)."""
    return {
        "identities": """SELECT maison_ref, email_token, phone_token
                         FROM identity_map ORDER BY maison_ref""",
        "activity": """SELECT i.maison_ref, a.month, a.group_category, a.channel, a.orders,
                         a.amount_eur
                       FROM activity_by_customer a JOIN identity_map i USING (customer_id)
                       ORDER BY i.maison_ref, a.month, a.group_category, a.channel""",
    }


class _Clock:
    """Per-step wall times for the benchmark, with an optional progress callback."""

    def __init__(self, progress: Callable[[str], None] | None) -> None:
        self.timings: dict[str, float] = {}
        self._progress = progress

    @contextmanager
    def step(self, name: str, label: str) -> Iterator[None]:
        if self._progress:
            self._progress(label)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start


def _customer_counts(engine: Engine) -> dict[str, int]:
    rows = engine.to_polars("SELECT status, count(*) AS n FROM customer_status GROUP BY 1")
    return dict(rows.iter_rows())


def _purchase_summary(counts: pl.DataFrame, exported: int) -> dict[str, int]:
    def total(expr: pl.Expr) -> int:
        return int(counts.filter(expr)["rows"].sum())

    in_window = pl.col("window") == "in_window"
    return {
        "read": total(pl.lit(True)),
        "in_window": total(in_window),
        "before_window": total(pl.col("window") == "before_window"),
        "future_dated": total(pl.col("window") == "future_dated"),
        "in_window_not_eligible": total(in_window & (pl.col("customer") != "eligible")),
        "unknown_customer": total(pl.col("customer") == "unknown_customer"),
        "exported": exported,
    }


def _unmapped_summary(
    unmapped: pl.DataFrame, *, min_customers: int, id_labels: set[str]
) -> dict[str, Any]:
    """Unmapped rows, the labels safe to name (see the module rules), the rest counted."""
    labels, withheld = [], {"labels": 0, "rows": 0}
    for category, rows, customers in unmapped.iter_rows():
        if category is None:
            labels.append({"category": MISSING_CATEGORY, "rows": int(rows)})
        elif _nameable(category, customers, min_customers, id_labels):
            labels.append({"category": category, "rows": int(rows)})
        else:
            withheld["labels"] += 1
            withheld["rows"] += int(rows)
    total = int(unmapped["rows"].sum()) if unmapped.height else 0
    return {"rows": total, "labels": labels, "withheld": withheld}


def _nameable(category: str, customers: int, min_customers: int, id_labels: set[str]) -> bool:
    return (
        customers >= min_customers and not looks_identifying(category) and category not in id_labels
    )


def manifest_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of the export summary that goes into the cleartext manifest.

    Only counts of what the package holds (`MANIFEST_SUMMARY_KEYS`): no drop reasons, no
    count of non-consenting or CRM-wide customers, no label, no amount.
    """
    out: dict[str, Any] = {}
    for section, keys in MANIFEST_SUMMARY_KEYS.items():
        value = summary[section]
        out[section] = int(value) if keys is None else {k: int(value[k]) for k in keys}
    return out


def _check_finite_amounts(engine: Engine, purchases: Path) -> float:
    """The net EUR total, refusing amounts that overflow once converted and summed."""
    bad, total = engine.to_polars(
        "SELECT count(*) FILTER (NOT isfinite(amount_eur)), coalesce(sum(amount_eur), 0) "
        "FROM activity_by_customer"
    ).row(0)
    if bad or not math.isfinite(total):
        what = f"{bad} activity row(s)" if bad else "the net total"
        raise InputError(
            f"purchases file {purchases}: column amount: {what} not finite once converted "
            "to EUR and summed (amounts out of range)"
        )
    return float(total)


def export_maison(
    customers: Path,
    purchases: Path,
    *,
    as_of: date,
    keys: PartyKeys,
    config: MaisonConfig,
    taxonomy: Taxonomy,
    fx: FxTable,
    out_dir: Path,
    batch_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    memory_limit: str = "2GB",
) -> ExportResult:
    """Export one maison's consented activity as a sealed package in `out_dir`.

    Example: export_maison(Path("customers.parquet"), Path("purchases.parquet"),
    as_of=date(2026, 9, 30), keys=load_party(Path("keys/aurelle")), config=cfg,
    taxonomy=load_taxonomy(), fx=load_fx(), out_dir=Path("outbox"))
    """
    recipient, matching_key_id = _check_keys(keys, config.id)
    audit.require_intact(party_log(keys))  # refuse before working, not after
    if config.sector not in taxonomy.sector_names:
        raise InputError(f"maison {config.id}: sector {config.sector!r} is not in the taxonomy")
    catch_all = taxonomy.sector(config.sector).catch_all
    batch_id = batch_id or as_of.strftime("%Y-%m")
    clock = _Clock(progress)
    with (
        private_workdir(prefix="crossgroup-export-") as work,
        Engine(work, memory_limit=memory_limit, threads=os.cpu_count() or 2) as engine,
    ):
        engine.execute("session", "SET TimeZone = 'UTC'")
        with clock.step("read", "Reading and checking inputs"):
            customers_read = load_customers(engine, Path(customers))
            load_purchases(engine, Path(purchases), fx)
        with clock.step("filter", "Selecting consented customers and the 3-year window"):
            engine.register("fx_rates", _fx_frame(fx))
            engine.register("category_map", _category_frame(config))
            engine.run(customer_status_step(as_of))
            status_counts = _customer_counts(engine)
            purchase_counts = engine.to_polars(purchase_counts_sql(as_of))
            engine.run(export_rows_step(as_of, catch_all))
        with clock.step("aggregate", "Aggregating activity per customer and month"):
            engine.run(activity_step())
            exported_ids = engine.to_polars("SELECT DISTINCT customer_id FROM activity_by_customer")
            eur_total = _check_finite_amounts(engine, Path(purchases))
            unmapped = engine.to_polars(unmapped_sql())
            min_customers = config.placeholder_max_customers + 1
            id_labels = _labels_equal_to_ids(
                engine,
                [
                    c
                    for c, _, n in unmapped.iter_rows()
                    if c is not None and n >= min_customers and not looks_identifying(c)
                ],
            )
        if exported_ids.height == 0:
            raise InputError(
                f"nothing to export for {config.id}: no eligible customer has a purchase in "
                f"({window_start(as_of)}, {as_of}]"
            )
        with clock.step("normalize", "Normalizing emails and phones"):
            identifiers, guard = tokenizable_identifiers(
                engine.to_polars("SELECT customer_id, email, phone, country FROM customers"),
                exported_ids["customer_id"],
                placeholder_max_customers=config.placeholder_max_customers,
            )
        with clock.step("tokenize", "Pseudonymizing (keyed HMAC)"):
            engine.register("identity_map", pseudonymize(identifiers, keys))
        with clock.step("aggregate", "Writing the payload"):
            # sorted: the package manifest lists tables in name order
            files = {name: work / f"{name}.parquet" for name in sorted(payload_sql())}
            for name, sql in payload_sql().items():
                engine.copy_to_parquet(sql, files[name], label=f"write {name}")
            activity_rows = engine.count("activity_by_customer")
            exported_refs = engine.to_polars("SELECT maison_ref FROM identity_map")["maison_ref"]
            exported_rows = engine.count("export_rows")
        with clock.step("check", "Privacy check of the payload"):
            check_export_files(
                engine,
                files,
                identifier_sources={
                    "customer_id": "SELECT customer_id AS value FROM customers",
                    "order_id": "SELECT order_id AS value FROM purchases",
                },
                allowed_values={
                    "activity.group_category": taxonomy.category_sector().keys(),
                    "activity.channel": CHANNELS,
                },
            )
        summary = {
            "maison": config.id,
            "batch_id": batch_id,
            "as_of": as_of.isoformat(),
            "window": {"after": window_start(as_of).isoformat(), "through": as_of.isoformat()},
            "consent_snapshot": consent_snapshot(as_of).isoformat(),
            "customers": _customers_summary(customers_read, status_counts, exported_ids.height),
            "purchases": _purchase_summary(purchase_counts, exported_rows),
            **guard,
            "unmapped_categories": _unmapped_summary(
                unmapped, min_customers=min_customers, id_labels=id_labels
            ),
            "activity_rows": activity_rows,
            "amount_eur_total": round(eur_total, 2),
        }
        with (
            clock.step("seal", "Sealing the package for the processor"),
            staged_output(out_dir) as staging,
        ):
            package_path, manifest = seal_package(
                staging,
                kind="export",
                sender=keys,
                recipient=recipient,
                tables=files,
                batch_id=batch_id,
                as_of=as_of,
                matching_key_id=matching_key_id,
                consent_snapshot=consent_snapshot(as_of),
                summary=manifest_summary(summary),
            )
            # the full summary stays at the maison, beside the package (never sent with it)
            summary_path = package_path.with_name(package_path.name + ".summary.json")
            summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    final = Path(out_dir) / package_path.relative_to(staging)
    record_export(
        keys, package_path=final, manifest=manifest, summary=summary,
        exported_refs=exported_refs, inputs=[Path(customers), Path(purchases)],
        timings=clock.timings,
    )  # fmt: skip
    return ExportResult(final, manifest, summary, clock.timings)


def _customers_summary(read: int, status: dict[str, int], exported: int) -> dict[str, Any]:
    eligible = status.get("eligible", 0)
    dropped = {reason: status.get(reason, 0) for reason in DROP_REASONS}
    dropped["no_purchase_in_window"] = eligible - exported
    return {"read": read, "eligible": eligible, "exported": exported, "dropped": dropped}


def _fx_frame(fx: FxTable) -> pl.DataFrame:
    return pl.DataFrame(
        {"currency": list(fx.eur_per_unit), "eur_per_unit": list(fx.eur_per_unit.values())},
        schema={"currency": pl.String, "eur_per_unit": pl.Float64},
    )


def _category_frame(config: MaisonConfig) -> pl.DataFrame:
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


def _check_keys(keys: PartyKeys, maison_id: str) -> tuple[str, str]:
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
