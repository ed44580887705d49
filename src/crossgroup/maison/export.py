"""The maison export (DESIGN §4.3): consented customers' last 3 years, pseudonymized and sealed.

Stages are SQL builders run by the Engine over the input files, so 10 million purchase lines
are filtered and aggregated out of core; only the per-customer identifiers come up into
Polars, to be normalized and keyed-hashed (distinct values only) and joined back. The payload
is written to a private workdir, checked (`privacy.export_checks`) and sealed for the
processor; the package and its summary reach `out_dir` in one commit with the export ledger's
line, the refs file and the audit entry (crossgroup.commit), under the maison's lock.
The rules (eligibility, window, categories, summaries) are in `export_rules` and
`export_summary`; this module runs them in order, timed, and commits the result.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from crossgroup import audit
from crossgroup.commit import party_session, transaction
from crossgroup.config import CHANNELS, FxTable, MaisonConfig, Taxonomy
from crossgroup.contracts import AMOUNT_LIMIT_EUR
from crossgroup.crypto.keys import PartyKeys
from crossgroup.crypto.package import Manifest, seal_package
from crossgroup.engine import DuckDBEngine, Engine
from crossgroup.errors import InputError
from crossgroup.io import private_workdir
from crossgroup.maison import export_rules as rules
from crossgroup.maison import export_summary as summaries
from crossgroup.maison.export_identities import pseudonymize, tokenizable_identifiers
from crossgroup.maison.export_ledger import party_log, read_export_ledger, record_export
from crossgroup.maison.inputs import load_customers, load_purchases
from crossgroup.privacy.export_checks import check_export_files, looks_identifying

# keys of ExportResult.timings, in pipeline order (aggregate also covers writing the payload)
STEPS = ("read", "filter", "aggregate", "normalize", "tokenize", "check", "seal")


@dataclass(frozen=True)
class ExportResult:
    """The sealed package (its final path in out_dir), its manifest, figures and step times."""

    package_path: Path
    manifest: Manifest
    summary: dict
    timings: dict[str, float] = field(default_factory=dict)


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


def _activity_figures(engine: Engine, purchases: Path) -> tuple[int, float]:
    """Activity rows and their net EUR total (one pass), refusing amounts that overflow once
    converted and summed, or that reach the contract's AMOUNT_LIMIT_EUR."""
    rows, bad, total = engine.to_polars(
        "SELECT count(*), count(*) FILTER (NOT isfinite(amount_eur) "
        f"OR abs(amount_eur) >= {AMOUNT_LIMIT_EUR}), "
        "coalesce(sum(amount_eur), 0) FROM activity_by_customer"
    ).row(0)
    if bad or not math.isfinite(total):
        what = f"{bad} activity row(s)" if bad else "the net total"
        raise InputError(
            f"purchases file {purchases}: column amount: {what} not finite or not below "
            f"{AMOUNT_LIMIT_EUR:.0e} EUR once converted and summed (amounts out of range)"
        )
    return int(rows), float(total)


def _reads_like_a_phone(batch_id: str) -> bool:
    """Phone-shaped with 9 digits or more once a leading date (2026-09-30, 20260930) is set
    aside: a national number with its trunk prefix, or an international one. Ordinary ids
    ("2026-09.1", "20260930-2", "2026093001") pass."""
    undated = re.sub(
        r"^(?:\d{4}-\d{2}-\d{2}|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))",
        "",
        batch_id,
    )
    return looks_identifying(undated) and sum(c.isdigit() for c in undated) >= 9


def _require_new_batch(keys: PartyKeys, batch_id: str) -> None:
    """One package per maison and batch: a second one would be refused at the processor, and
    a rerun after a crash must not send the batch twice."""
    done = [line for line in read_export_ledger(keys.directory) if line["batch_id"] == batch_id]
    if done:
        raise InputError(
            f"batch {batch_id} was already exported as package {done[-1]['package_id']} "
            f"({done[-1]['package_file']}); give a new --batch-id to export it again"
        )


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
    recipient, matching_key_id = rules.check_keys(keys, config.id)
    with party_session(keys.directory, party=config.id, command="export"):
        return _export(
            Path(customers), Path(purchases), as_of=as_of, keys=keys, config=config,
            taxonomy=taxonomy, fx=fx, out_dir=Path(out_dir), batch_id=batch_id,
            progress=progress, memory_limit=memory_limit, recipient=recipient,
            matching_key_id=matching_key_id,
        )  # fmt: skip


def _export(customers, purchases, *, as_of, keys, config, taxonomy, fx, out_dir, batch_id,
            progress, memory_limit, recipient, matching_key_id) -> ExportResult:  # fmt: skip
    """The export under the maison's lock, ending in one commit: the package, its local
    summary, the refs file, the export ledger's line and the audit entry."""
    audit.require_intact(party_log(keys))  # refuse before working, not after
    batch_id = batch_id or as_of.strftime("%Y-%m")
    if _reads_like_a_phone(batch_id):  # it is in the package's name and readable manifest
        raise InputError(
            "--batch-id reads like a phone number, and it travels in the package's name and "
            "manifest: use a neutral id such as 2026-09"
        )
    _require_new_batch(keys, batch_id)
    if config.sector not in taxonomy.sector_names:
        raise InputError(f"maison {config.id}: sector {config.sector!r} is not in the taxonomy")
    catch_all = taxonomy.sector(config.sector).catch_all
    clock = _Clock(progress)
    with (
        private_workdir(prefix="crossgroup-export-", party=config.id) as work,
        DuckDBEngine(work, memory_limit=memory_limit, threads=os.cpu_count() or 2) as engine,
    ):
        engine.execute("session", "SET TimeZone = 'UTC'")
        with clock.step("read", "Reading and checking inputs"):
            customers_read = load_customers(engine, Path(customers))
            load_purchases(engine, Path(purchases), fx)
        with clock.step("filter", "Selecting consented customers and the 3-year window"):
            engine.register("fx_rates", rules.fx_frame(fx))
            engine.register("category_map", rules.category_frame(config))
            engine.run(rules.customer_status_step(as_of))
            status_counts = summaries.customer_counts(engine)
            purchase_counts = engine.to_polars(rules.purchase_counts_sql(as_of))
        with clock.step("aggregate", "Aggregating activity per customer and month"):
            engine.run(rules.activity_step(as_of, catch_all))
            exported_ids = engine.to_polars("SELECT DISTINCT customer_id FROM activity_by_customer")
            activity_rows, eur_total = _activity_figures(engine, Path(purchases))
            unmapped = summaries.unmapped_labels(purchase_counts)
            min_customers = config.placeholder_max_customers + 1
            id_labels = summaries.labels_equal_to_ids(
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
                f"({rules.window_start(as_of)}, {as_of}]"
            )
        with clock.step("normalize", "Normalizing emails and phones"):
            identifiers, guard = tokenizable_identifiers(
                engine.to_polars("SELECT customer_id, email, phone, country FROM customers"),
                exported_ids["customer_id"],
                placeholder_max_customers=config.placeholder_max_customers,
            )
        with clock.step("tokenize", "Pseudonymizing (keyed HMAC)"):
            identity_map = pseudonymize(identifiers, keys)
            engine.register("identity_map", identity_map)
        with clock.step("aggregate", "Writing the payload"):
            # sorted: the package manifest lists tables in name order
            files = {name: work / f"{name}.parquet" for name in sorted(rules.payload_sql())}
            for name, sql in rules.payload_sql().items():
                engine.copy_to_parquet(sql, files[name], label=f"write {name}")
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
            "window": {
                "after": rules.window_start(as_of).isoformat(),
                "through": as_of.isoformat(),
            },
            "consent_snapshot": rules.consent_snapshot(as_of).isoformat(),
            "customers": summaries.customers_summary(
                customers_read, status_counts, exported_ids.height
            ),
            "purchases": summaries.purchase_summary(purchase_counts),
            **guard,
            "unmapped_categories": summaries.unmapped_summary(
                unmapped, min_customers=min_customers, id_labels=id_labels
            ),
            "activity_rows": activity_rows,
            "amount_eur_total": round(eur_total, 2),
        }
        with (
            clock.step("seal", "Sealing the package for the processor"),
            transaction(keys.directory) as tx,
        ):
            staging = tx.stage_output(out_dir)
            package_path, manifest = seal_package(
                staging,
                kind="export",
                sender=keys,
                recipient=recipient,
                tables=files,
                batch_id=batch_id,
                as_of=as_of,
                matching_key_id=matching_key_id,
                consent_snapshot=rules.consent_snapshot(as_of),
                summary=summaries.manifest_summary(summary),
            )
            # the full summary stays at the maison, beside the package (never sent with it)
            summary_path = package_path.with_name(package_path.name + ".summary.json")
            summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
            record_export(
                tx, keys, package_path=package_path, manifest=manifest, summary=summary,
                exported_refs=identity_map["maison_ref"], inputs=[customers, purchases],
                timings=clock.timings,
            )  # fmt: skip
    final = out_dir / package_path.relative_to(staging)
    return ExportResult(final, manifest, summary, clock.timings)
