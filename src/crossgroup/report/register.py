"""The record of processing activities (GDPR art. 30), generated so it cannot drift.

Every fact that the code decides is imported from where the code decides it: the exported
and returned columns and the window (`contracts`), the columns read at the maison
(`maison.inputs`), the crypto suite (`crypto`), and k, k_aggregate and retention from the
pipeline file. Only the words that
explain them live here; a column without words makes the register say so (and a test fail).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crossgroup.config import GroupConfig, load_maison, maison_config_path, read_toml
from crossgroup.contracts import EXPORT, REF_BYTES, RETURN, WINDOW_YEARS
from crossgroup.crypto.keys import KEM_CLASSIC, KEM_HYBRID, Registry, hybrid_kem_available
from crossgroup.crypto.package import CHUNK_SIZE, FORMAT_VERSION, suite_name
from crossgroup.crypto.tokens import SPEC_VERSION
from crossgroup.errors import InputError
from crossgroup.maison.inputs import CUSTOMER_COLUMNS, PURCHASE_COLUMNS

REGISTER_FORMAT = "crossgroup-register/1"
UNDOCUMENTED = "(undocumented column: describe it in report/register.py COLUMN_MEANING)"
COLUMN_MEANING = {
    "customer_id": "the maison's customer number",
    "email": "e-mail address",
    "phone": "phone number",
    "country": "country (default region of national phone numbers)",
    "cross_group_consent": "cross-group consent flag",
    "consent_updated_at": "time the consent was recorded",
    "restricted": "restriction of processing or objection to profiling",
    "order_id": "order number",
    "purchased_at": "purchase date",
    "category": "the maison's product category",
    "amount": "amount paid or refunded",
    "currency": "currency of the amount",
    "channel": "sales channel (boutique, online, other)",
    "maison_ref": "keyed pseudonym of the customer number (HMAC under the maison's own secret)",
    "email_token": "keyed pseudonym of the normalized e-mail (HMAC under the group key)",
    "phone_token": "keyed pseudonym of the E.164 phone number (HMAC under the group key)",
    "month": "first day of the purchase month",
    "group_category": "group product category (taxonomy)",
    "orders": "number of distinct orders in the month, category and channel",
    "amount_eur": "net amount in euros for the month, category and channel",
    "segment": "preference segment number",
    "segment_label": "preference segment name",
    "value_tier": "spend band",
    "breadth": "number of the group's maisons shopped at, banded",
    "recency_band": "time since last purchase, banded",
    "frequency_band": "purchase frequency, banded",
    "channel_preference": "boutique, online or omnichannel",
    "lead_sector": "sector with the largest share of spend",
    "second_sector": "sector with the next largest share of spend, or none",
    "generalized": "which attributes were coarsened or withheld for k-anonymity",
    "table": "aggregate table name",
    "scope": "maison or group",
    "row_key": "aggregate row",
    "col_key": "aggregate column",
    "persons": "distinct persons in the cell",
    "share": "share of persons in the cell",
    "suppressed": "whether the cell was suppressed",
    "note": "why a cell was suppressed",
    "margin": "half-width of the 95 % interval of a noisy group-wide count (DP mode)",
    "description": "what a segment means, in plain words",
}
PURPOSE = (
    "Cross-brand preference analytics: learn generalized preference segments of customers "
    "who gave cross-group consent, across the group's maisons, and return to each maison "
    "only generalized information about its own consenting customers, plus per-brand "
    "aggregates. The group uses the data for no other purpose and does not learn who the "
    "customers are."
)
DATA_SUBJECTS = (
    "Customers of a participating maison who gave cross-group consent recorded on or before "
    "the as-of date, are not restricted (GDPR art. 18/21), and bought in the last "
    f"{WINDOW_YEARS} years."
)
AUTOMATED_DECISIONS = (
    "No decision based solely on automated processing with legal or similarly significant "
    "effects (GDPR art. 22): segments describe preferences in bands for marketing analytics "
    "and are not used to grant, refuse or price anything for an individual."
)


def _columns(names: Any) -> list[dict]:
    return [{"column": c, "meaning": COLUMN_MEANING.get(c, UNDOCUMENTED)} for c in names]


def _controllers(group: GroupConfig, registry: Registry | None) -> list[dict]:
    out = []
    for mid in group.maisons:
        name, sector = mid, None
        if registry is not None:
            try:
                info = registry.party(mid)
                name, sector = info.name, info.sector
            except Exception:
                raise InputError(f"maison {mid} of the pipeline is not in the registry") from None
        elif maison_config_path(mid).is_file():
            cfg = load_maison(maison_config_path(mid))
            name, sector = cfg.name, cfg.sector
        out.append({"id": mid, "name": name, "sector": sector})
    return out


def _security(registry: Registry | None) -> dict:
    kems = sorted({p.hpke_kem for p in registry.parties}) if registry else []
    kem = kems[0] if len(kems) == 1 else (KEM_HYBRID if hybrid_kem_available() else KEM_CLASSIC)
    return {
        "pseudonymization": (
            f"HMAC-SHA256 truncated to {REF_BYTES * 8} bits; e-mail and phone keys derived "
            f"with HKDF-SHA256 from the group matching secret per identifier type and epoch "
            f"(spec {SPEC_VERSION}); maison_ref keyed by each maison's own local secret; the "
            "processor holds neither secret"
        ),
        "package_suite": suite_name(kem, CHUNK_SIZE),
        "package_format_version": FORMAT_VERSION,
        "signature": "Ed25519 over manifest and payload digest, verified before decryption",
        "encryption": f"HPKE (RFC 9180) with KEM {kem}; payload AES-256-GCM in the STREAM "
        f"construction, {CHUNK_SIZE} byte chunks",
        "replay": "each recipient keeps a ledger of accepted package ids",
        "plaintext": "only in a private working directory (mode 0700) removed after each run",
        "audit": "hash-chained audit log per party, head signed with the party's Ed25519 key",
    }


def _group_figures(group: GroupConfig, party_dir: Path | None) -> dict:
    """How figures about persons outside a recipient's customers are released, and, given the
    processor's directory, what its privacy-budget ledger says was spent."""
    from crossgroup.privacy import budget, noise

    out: dict[str, Any] = {"mode": group.group_figures}
    if group.group_figures == "dp":
        out |= {
            "mechanism": noise.MECHANISM,
            "epsilon_per_release": group.epsilon_per_release,
            "delta": group.delta,
            "epsilon_budget_per_year": group.epsilon_budget_per_year,
        }
    if party_dir is not None:
        out["spent"] = budget.spend_summary(party_dir)
    return out


def build_register(
    group: GroupConfig,
    *,
    pipeline_path: Path,
    registry: Registry | None = None,
    party_dir: Path | None = None,
) -> dict:
    """The register as data; every threshold, column and algorithm comes from config or code;
    `party_dir` (the processor's directory) adds the privacy budget spent so far."""
    extra = read_toml(pipeline_path).get("register", {})
    return {
        "format": REGISTER_FORMAT,
        "pipeline": Path(pipeline_path).name,
        "controllers": _controllers(group, registry),
        "processor": {
            "id": registry.processor_id if registry else "processor",
            "role": "group processor (processes on the maisons' documented instructions)",
        },
        "contact": extra.get("contact", "to be completed by each controller"),
        "purpose": PURPOSE,
        "legal_basis": "consent (GDPR art. 6(1)(a)), collected by each maison",
        "data_subjects": DATA_SUBJECTS,
        "personal_data": {
            "read_at_maison_never_sent": {
                "customers": _columns(CUSTOMER_COLUMNS),
                "purchases": _columns(PURCHASE_COLUMNS),
            },
            "sent_to_processor": {t: _columns(c.names) for t, c in EXPORT.items()},
            "returned_to_each_maison": {t: _columns(c.names) for t, c in RETURN.items()},
            "window_years": WINDOW_YEARS,
        },
        "recipients": [
            "the group processor: pseudonymized export packages of every participating maison",
            "each maison: generalized segments of its own consenting customers only, and "
            "per-brand aggregates",
            "analysts at each maison: the imported segment file and report",
        ],
        "transfers": extra.get(
            "transfers",
            "none made by crossgroup itself; record here any transfer outside the EEA",
        ),
        "privacy_thresholds": {
            "k": group.k,
            "k_aggregate": group.k_aggregate,
            "max_records_per_token": group.max_records_per_token,
        },
        "group_figures": _group_figures(group, party_dir),
        "retention_days": dict(group.retention),
        "security_measures": _security(registry),
        "automated_decisions": AUTOMATED_DECISIONS,
    }


def _md_columns(rows: list[dict]) -> list[str]:
    return [
        "| column | meaning |",
        "|---|---|",
        *(f"| `{r['column']}` | {r['meaning']} |" for r in rows),
    ]


def render_markdown(reg: dict) -> str:
    """The register as a Markdown page for the DPO's file."""
    data = reg["personal_data"]
    lines = [
        "# Record of processing activities: cross-group analytics (GDPR art. 30)",
        "",
        f"Generated by `crossgroup register` from `{reg['pipeline']}` and the code's constants.",
        "",
        "## Controllers",
        "",
        *(f"- {c['name']} (`{c['id']}`" + (f", {c['sector']})" if c["sector"] else ")")
          for c in reg["controllers"]),
        "",
        "## Processor",
        "",
        f"- `{reg['processor']['id']}`: {reg['processor']['role']}",
        f"- Contact: {reg['contact']}",
        "",
        "## Purpose and legal basis",
        "",
        reg["purpose"],
        "",
        f"Legal basis: {reg['legal_basis']}.",
        "",
        "## Categories of data subjects",
        "",
        reg["data_subjects"],
        "",
        "## Categories of personal data",
        "",
    ]  # fmt: skip
    for table, cols in data["read_at_maison_never_sent"].items():
        lines += [f"Read at each maison from `{table}`, never sent:", "", *_md_columns(cols), ""]
    for table, cols in data["sent_to_processor"].items():
        lines += [f"Sent to the processor, table `{table}`:", "", *_md_columns(cols), ""]
    for table, cols in data["returned_to_each_maison"].items():
        lines += [f"Returned to each maison, table `{table}`:", "", *_md_columns(cols), ""]
    lines += [f"Purchases older than {data['window_years']} years are never sent.", ""]
    lines += ["## Recipients", "", *(f"- {r}" for r in reg["recipients"]), ""]
    lines += ["## Transfers to third countries", "", reg["transfers"], ""]
    th = reg["privacy_thresholds"]
    lines += [
        "## Privacy thresholds",
        "",
        f"- k = {th['k']}: every combination of returned attributes is shared by at least "
        f"{th['k']} persons of the batch, or generalized or withheld",
        f"- k_aggregate = {th['k_aggregate']}: aggregate cells below this many persons are "
        "suppressed, and the suppression is reported",
        f"- an identifier carried by more than {th['max_records_per_token']} records of one "
        "maison never links anyone",
        "",
        *_md_group_figures(reg["group_figures"], th["k_aggregate"]),
        "## Retention",
        "",
        *(
            f"- {k.removesuffix('_days').replace('_', ' ')}: {v} days"
            for k, v in reg["retention_days"].items()
        ),
        "",
        "## Security measures",
        "",
        *(f"- {k.replace('_', ' ')}: {v}" for k, v in reg["security_measures"].items()),
        "",
        "## Automated decision-making",
        "",
        reg["automated_decisions"],
        "",
    ]
    return "\n".join(lines)


def _md_group_figures(figures: dict, k_aggregate: int) -> list[str]:
    """The section on figures covering persons who are not the recipient's customers."""
    lines = ["## Group-wide figures", ""]
    if figures["mode"] == "dp":
        lines += [
            f"- differential privacy: {figures['mechanism']}; epsilon "
            f"{figures['epsilon_per_release']:g} per release, delta {figures['delta']:g}; "
            f"a release that would take any recipient past {figures['epsilon_budget_per_year']:g}"
            " within a year of its as-of date is refused",
            f"- noisy counts below {k_aggregate} plus their 95 % margin are withheld; figures "
            "about a maison's own customers stay exact",
        ]
    else:
        lines.append(f"- exact counts under the k_aggregate = {k_aggregate} cell rule")
    spent = figures.get("spent")
    if spent is not None and not spent["by_recipient"]:
        lines += ["", "No DP release is recorded in the privacy-budget ledger."]
    elif spent is not None:
        lines += [
            "",
            f"Privacy budget spent (ledger; latest release as of {spent['latest_as_of']}):",
            "",
            "| recipient | releases | epsilon within a year | epsilon in all |",
            "|---|---:|---:|---:|",
            *(
                f"| {r} | {v['releases']} | {v['epsilon_within_a_year']:.3g} | "
                f"{v['epsilon_total']:.3g} |"
                for r, v in spent["by_recipient"].items()
            ),
        ]
    return [*lines, ""]


def register_files(reg: dict) -> dict[str, str]:
    """File name -> text, for `staged_output`."""
    return {
        "register.md": render_markdown(reg),
        "register.json": json.dumps(reg, indent=2, ensure_ascii=False) + "\n",
    }
