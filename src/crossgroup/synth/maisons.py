"""Per-maison parameters of a run: consent rate, category mix, dirty labels, placeholders."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from crossgroup.config import MaisonConfig, Taxonomy
from crossgroup.errors import InputError
from crossgroup.synth import world
from crossgroup.synth.identifiers import ID_STYLES, derive_key
from crossgroup.synth.pools import boutique_phone

# Where each demo maison's flagship is: its boutique phone placeholder is a landline there.
FLAGSHIP_REGION = {"kessler": "CH", "harrow": "GB"}


@dataclass(frozen=True)
class MaisonPlan:
    config: MaisonConfig
    index: int
    consent_rate: float
    labels: tuple[str, ...]  # mapped categories first, then the unmapped labels
    n_mapped: int
    category_weights: np.ndarray  # over the mapped categories
    price_eur: np.ndarray  # median line price per label
    id_style: str
    customer_key: int
    order_key: int
    placeholder_emails: tuple[str, ...]
    placeholder_phone: str

    @property
    def id(self) -> str:
        return self.config.id


def plan_maisons(configs: list[MaisonConfig], taxonomy: Taxonomy, seed: int) -> list[MaisonPlan]:
    """Draw each maison's parameters from the seed (consent rates spread over 34-66%)."""
    rng = np.random.default_rng([seed, 0x4D41])
    lo, hi = world.CONSENT_RATE_RANGE
    rates = rng.permutation(np.linspace(lo, hi, max(len(configs), 2)))
    sector_of = taxonomy.category_sector()
    plans = []
    for i, cfg in enumerate(configs):
        mapped = tuple(cfg.categories)
        unknown = [u for u in world.UNMAPPED_LABELS if u not in cfg.categories]
        extra = tuple(rng.choice(unknown, size=min(2, len(unknown)), replace=False).tolist())
        sector = taxonomy.sector(cfg.sector)
        fallback = float(np.median([world.PRICE_EUR[c] for c in sector.categories]))
        prices = [world.PRICE_EUR.get(cfg.categories[c], fallback) for c in mapped]
        prices += [fallback * 0.5] * len(extra)  # archive and misc lines sell below the range
        if not all(sector_of.get(cfg.categories[c]) for c in mapped):
            raise InputError(f"maison {cfg.id}: a category maps outside the taxonomy")
        placeholders = tuple(rng.choice(world.PLACEHOLDER_EMAILS, size=2, replace=False).tolist())
        region = FLAGSHIP_REGION.get(cfg.id, "FR")
        plans.append(
            MaisonPlan(
                config=cfg,
                index=i,
                consent_rate=float(rates[i]),
                labels=mapped + extra,
                n_mapped=len(mapped),
                category_weights=rng.dirichlet(np.full(len(mapped), 2.0)),
                price_eur=np.array(prices, float),
                id_style=ID_STYLES[i % len(ID_STYLES)],
                customer_key=derive_key(seed, f"customer_id/{cfg.id}"),
                order_key=derive_key(seed, f"order_id/{cfg.id}"),
                placeholder_emails=placeholders,
                placeholder_phone=boutique_phone(region, seed + i),
            )
        )
    return plans


def maison_toml(cfg: MaisonConfig) -> str:
    """The maison's config in the DESIGN §4.2 shape, readable by crossgroup.config.load_maison."""

    def q(s: str) -> str:
        return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string

    lines = [
        f"id = {q(cfg.id)}",
        f"name = {q(cfg.name)}",
        f"sector = {q(cfg.sector)}",
        "# Customers sharing one identifier value beyond this count get no token (placeholders).",
        f"placeholder_max_customers = {cfg.placeholder_max_customers}",
        "",
        "[categories]",
        *(f"{q(k)} = {q(v)}" for k, v in cfg.categories.items()),
    ]
    return "\n".join(lines) + "\n"
