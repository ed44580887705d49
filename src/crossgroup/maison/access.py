"""Access and portability (GDPR art. 15 and 20), answered by the maison, the controller.

For one customer and an as-of date, `customer_access` says what `crossgroup export` WOULD
send about them, by running the export's own SQL builders on a one-customer filter (never a
second implementation), which batches already carried them (the export ledger), and the
generalized attributes the group returned for them (imported segments files or return
packages, opened read-only in a private workdir, without touching the replay ledger).

Pseudonyms are never written out: an e-mail or phone token is a keyed pseudonym shared by
the whole group, so the customer is told whether one is shared and why not, not its bytes
(see docs/rights.md). The maison_ref is kept out for the same reason.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from crossgroup import audit
from crossgroup.commit import party_session, transaction
from crossgroup.config import FxTable, MaisonConfig, Taxonomy
from crossgroup.crypto.keys import PartyKeys
from crossgroup.crypto.package import open_package
from crossgroup.crypto.tokens import maison_refs, normalize_emails, normalize_phones
from crossgroup.engine import DuckDBEngine, Engine, Step
from crossgroup.errors import InputError, SecurityError
from crossgroup.io import private_workdir, scan_table, table_columns
from crossgroup.maison import export_rules as ex
from crossgroup.maison.export_identities import pseudonymize, tokenizable_identifiers
from crossgroup.maison.export_ledger import included_in, party_log, read_export_ledger
from crossgroup.maison.inputs import load_customers, load_purchases

ACCESS_FORMAT = "crossgroup-access/1"
STATUS_TEXT = {
    "eligible": "gave cross-group consent before the as-of date and has purchases in the window",
    "no_consent": "no cross-group consent on file",
    "restricted": "processing restricted or profiling objected to (treated as no consent)",
    "consent_time_unknown": "consent has no recorded date, so it cannot be shown in force",
    "consent_after_as_of": "consent was given after the as-of date",
    "no_purchase_in_window": "consented, but no purchase in the 3-year window",
}


def _one_customer(step: Step) -> Step:
    """The export's own step, restricted to one customer by a bound parameter."""
    return Step(step.name, f"SELECT * FROM ({step.sql}) WHERE customer_id = ?")


def _identifier(
    kind: str, raw: str | None, normalized: str | None, shared: bool, exported: bool
) -> dict:
    if shared:
        return {"on_file": True, "pseudonym_shared": True, "reason": f"{kind} pseudonym shared"}
    if raw is None or not raw.strip():
        reason = f"no {kind} on file"
    elif not exported:
        reason = "nothing about this customer would be exported"
    elif normalized is None:
        reason = f"the {kind} on file is not valid, so it gets no pseudonym"
    else:
        reason = f"the {kind} on file is shared by several customers (placeholder): never used"
    return {"on_file": bool(raw and raw.strip()), "pseudonym_shared": False, "reason": reason}


def _would_export(
    engine: Engine, customer_id: str, as_of: date, keys: PartyKeys, config: MaisonConfig,
    catch_all: str,
) -> tuple[dict, list[dict], dict]:  # fmt: skip
    """Eligibility, activity rows and identifier status for one customer, export stages."""
    engine.run(_one_customer(ex.customer_status_step(as_of)), [customer_id])
    status = engine.scalar("SELECT status FROM customer_status")
    windows = engine.to_polars(ex.purchase_counts_sql(as_of)).filter(
        pl.col("customer") != "unknown_customer"
    )
    purchases = {w: int(windows.filter(pl.col("window") == w)["rows"].sum())
                 for w in ("in_window", "before_window", "future_dated")}  # fmt: skip
    engine.run(ex.activity_step(as_of, catch_all))
    exported = engine.to_polars("SELECT DISTINCT customer_id FROM activity_by_customer")
    if status == "eligible" and exported.height == 0:
        status = "no_purchase_in_window"
    raw = engine.to_polars(
        "SELECT email, phone, country FROM customers WHERE customer_id = ?", [customer_id]
    )
    email_norm = normalize_emails(raw["email"])[0]
    phone_norm = normalize_phones(raw["phone"], raw["country"], workers=1)[0]
    tokens = {"email": False, "phone": False}
    activity: list[dict] = []
    if exported.height:
        whole_file = engine.to_polars("SELECT customer_id, email, phone, country FROM customers")
        identifiers, _ = tokenizable_identifiers(
            whole_file, exported["customer_id"],
            placeholder_max_customers=config.placeholder_max_customers,
        )  # fmt: skip
        identity = pseudonymize(identifiers, keys)
        engine.register("identity_map", identity)
        tokens = {k: identity[f"{k}_token"].is_not_null().any() for k in tokens}
        rows = engine.to_polars(ex.payload_sql()["activity"]).drop("maison_ref")
        activity = [{**r, "month": r["month"].isoformat()} for r in rows.iter_rows(named=True)]
    eligibility = {
        "exported": status == "eligible",
        "status": status,
        "reason": STATUS_TEXT.get(status, status),
        "purchase_rows": purchases,
    }
    identifiers_out = {
        kind: _identifier(word, raw[kind][0], norm, bool(tokens[kind]), exported.height > 0)
        for kind, word, norm in (("email", "e-mail", email_norm), ("phone", "phone", phone_norm))
    }
    return eligibility, activity, identifiers_out


def _batches(keys: PartyKeys, ref: bytes) -> dict:
    """Which recorded exports carried this customer, from the export ledger."""
    lines = read_export_ledger(keys.directory)
    batches = []
    for line in lines:
        included = included_in(keys.directory, line, ref)
        if included is not False:
            batches.append({
                "batch_id": line["batch_id"], "package_id": line["package_id"],
                "as_of": line["as_of"], "created_at": line["created_at"],
                "included": "unknown (refs purged)" if included is None else True,
            })  # fmt: skip
    return {"exports_recorded": len(lines), "including_customer": batches}


def _attributes(frame: pl.DataFrame) -> list[dict]:
    return [
        {k: v if isinstance(v, str | int | float | bool) or v is None else str(v)
         for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]  # fmt: skip


def _returned(
    returns_dir: Path, customer_id: str, ref: bytes, keys: PartyKeys, work: Path
) -> tuple[list[dict], list[dict]]:
    """Attributes returned for this customer, and the files read (name, digest)."""
    found: list[dict] = []
    read: list[dict] = []
    for path in sorted(returns_dir.rglob("segments.parquet")):
        segments = scan_table(path, label="imported segments")
        if "customer_id" not in table_columns(segments, path, label="imported segments"):
            raise InputError(f"{path}: not an imported segments file (no customer_id column)")
        rows = segments.filter(pl.col("customer_id") == customer_id).drop("customer_id").collect()
        read.append({"file": path.name, "role": "segments", "sha256": audit.file_digest(path)})
        found += [{"source": str(path.relative_to(returns_dir)), "batch_id": None, **a}
                  for a in _attributes(rows)]  # fmt: skip
    # Reading an already-imported return must not count as a replay: the package is verified
    # (signature, recipient, kind, integrity) against a ledger-free copy of the keys, and
    # nothing is recorded as accepted.
    ledger_free = dataclasses.replace(keys, directory=work / "no-ledger")
    (work / "no-ledger").mkdir(mode=0o700)
    for n, path in enumerate(sorted(returns_dir.rglob("return-*.cgpkg"))):
        target = work / f"return-{n}"
        target.mkdir(mode=0o700)
        opened = open_package(path, ledger_free, target, kind="return")
        if opened.manifest.sender != keys.registry.processor_id:
            raise SecurityError(f"{path.name} was not sent by the group processor")
        segments = pl.read_parquet(opened.tables["segments"])
        rows = segments.filter(pl.col("maison_ref") == ref).drop("maison_ref")
        read.append(
            {
                "file": path.name,
                "role": "return_package",
                "package_id": opened.manifest.package_id,
                "sha256": audit.file_digest(path),
            }
        )
        found += [{"source": path.name, "batch_id": str(opened.manifest.batch_id), **a}
                  for a in _attributes(rows)]  # fmt: skip
    return found, read


def customer_access(
    *,
    customer_id: str,
    customers: Path,
    purchases: Path,
    as_of: date,
    keys: PartyKeys,
    config: MaisonConfig,
    taxonomy: Taxonomy,
    fx: FxTable,
    returns_dir: Path | None = None,
    now: datetime | None = None,
) -> tuple[dict, list[dict]]:
    """The access record for one customer (JSON-ready) and the input files it read."""
    ex.check_keys(keys, config.id)
    catch_all = taxonomy.sector(config.sector).catch_all
    ref = maison_refs(keys.local_secret, pl.Series([customer_id]))[0]
    with private_workdir(prefix="crossgroup-access-", party=keys.party_id) as work:
        with DuckDBEngine(work, memory_limit="2GB", threads=2) as engine:
            engine.execute("session", "SET TimeZone = 'UTC'")
            load_customers(engine, Path(customers))
            if not engine.scalar(
                "SELECT count(*) FROM customers WHERE customer_id = ?", [customer_id]
            ):
                raise InputError(f"--customer-id: no such customer in customers file {customers}")
            load_purchases(engine, Path(purchases), fx)
            engine.register("fx_rates", ex.fx_frame(fx))
            engine.register("category_map", ex.category_frame(config))
            eligibility, activity, identifiers = _would_export(
                engine, customer_id, as_of, keys, config, catch_all
            )
        returned, read = ([], []) if returns_dir is None else _returned(
            Path(returns_dir), customer_id, ref, keys, work
        )  # fmt: skip
    record = {
        "format": ACCESS_FORMAT,
        "maison": {"id": config.id, "name": config.name},
        "customer_id": customer_id,
        "as_of": as_of.isoformat(),
        "window": {"after": ex.window_start(as_of).isoformat(), "through": as_of.isoformat()},
        "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "would_be_exported": {**eligibility, "activity": activity},
        "identifiers": identifiers,
        "batches": _batches(keys, ref),
        "returned_attributes": returned,
    }
    return record, read


@dataclasses.dataclass(frozen=True)
class AccessResult:
    json_path: Path
    html_path: Path
    record: dict


def access_request(
    *,
    customer_id: str,
    customers: Path,
    purchases: Path,
    as_of: date,
    keys: PartyKeys,
    config: MaisonConfig,
    taxonomy: Taxonomy,
    fx: FxTable,
    out_dir: Path,
    returns_dir: Path | None = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> AccessResult:
    """Write access.json and access.html to `out_dir` together, then log it (no customer value).

    Example: access_request(customer_id="AU-000042", customers=crm, purchases=sales,
    as_of=date(2026, 9, 30), keys=load_party(Path("keys/aurelle")), config=cfg,
    taxonomy=tax, fx=fx, out_dir=Path("access/AU-000042"))
    """
    with party_session(keys.directory, party=keys.party_id, command="access"):
        return _access(customer_id, customers, purchases, as_of, keys, config, taxonomy, fx,
                       returns_dir, out_dir, request_id, now)  # fmt: skip


def _access(customer_id, customers, purchases, as_of, keys, config, taxonomy, fx, returns_dir,
            out_dir, request_id, now) -> AccessResult:  # fmt: skip
    """Under the maison's lock: the two files (one person's data: mode 0600) and the audit
    entry, one commit."""
    from crossgroup.maison.access_page import render_access_page

    audit.require_intact(party_log(keys))
    record, read = customer_access(
        customer_id=customer_id, customers=customers, purchases=purchases, as_of=as_of,
        keys=keys, config=config, taxonomy=taxonomy, fx=fx, returns_dir=returns_dir, now=now,
    )  # fmt: skip
    out_dir = Path(out_dir)
    with transaction(keys.directory) as tx:
        stage = tx.stage_output(out_dir, mode=0o600)
        (stage / "access.json").write_text(
            json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (stage / "access.html").write_text(render_access_page(record), encoding="utf-8")
        _record_access(tx, keys, record, read, customers, purchases, stage, as_of, request_id,
                       now)  # fmt: skip
    return AccessResult(out_dir / "access.json", out_dir / "access.html", record)


def _record_access(tx, keys, record, read, customers, purchases, stage, as_of, request_id, now):
    exported = record["would_be_exported"]
    tx.audit(
        party_log(keys),
        party=keys.party_id,
        command="access",
        counts={
            "customers": 1,
            "would_be_exported": int(exported["exported"]),
            "activity_rows": len(exported["activity"]),
            "batches_including": len(record["batches"]["including_customer"]),
            "returned_rows": len(record["returned_attributes"]),
        },
        inputs=[
            *(
                {"file": Path(p).name, "role": role, "sha256": audit.file_digest(Path(p))}
                for p, role in ((customers, "customers"), (purchases, "purchases"))
            ),
            *read,
        ],
        outputs=[
            {"file": n, "sha256": audit.file_digest(stage / n)}
            for n in ("access.json", "access.html")
        ],
        settings={"as_of": as_of.isoformat(), "request_id": request_id},
        signer=keys.signing_key,
        now=now,
    )
