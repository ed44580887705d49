"""Persons of one chunk: latent archetype, home country, maisons, PII and canonical identifiers.

A person is the ground-truth human behind one or more maison customer records. Everything is
drawn as arrays for the whole chunk; loops run over countries and archetypes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from crossgroup.synth import world
from crossgroup.synth.identifiers import derive_key, digits, permute, phone_numbers
from crossgroup.synth.maisons import MaisonPlan
from crossgroup.synth.pools import locale_pool, phone_pool

PERSON_HAS_EMAIL = 0.95
PERSON_HAS_PHONE = 0.88
_SEPARATORS = (".", "_", "")


@dataclass(frozen=True)
class PersonChunk:
    person_id: np.ndarray  # int64, global and contiguous across chunks
    archetype: np.ndarray  # index into world.ARCHETYPES
    country: np.ndarray  # index into world.COUNTRIES
    membership: np.ndarray  # bool (persons, maisons): customer of that maison
    spend_log: np.ndarray  # log spend multiplier of the person
    activity: np.ndarray  # purchase-rate multiplier of the person
    consent_z: np.ndarray  # latent propensity to consent, shared across maisons
    alt_maison: np.ndarray  # maison index where the person used another email, or -1
    frame: pl.DataFrame  # first_name, last_name, birth_date, address, email, alt_email, phone_nsn

    def __len__(self) -> int:
        return len(self.person_id)


def _memberships(
    rng: np.random.Generator, archetype: np.ndarray, plans: list[MaisonPlan]
) -> np.ndarray:
    """Breadth from the archetype, then which maisons by sector affinity (Gumbel top-k)."""
    n, m = len(archetype), len(plans)
    weights = np.empty((len(world.ARCHETYPES), m))
    breadth = np.empty(n, np.int64)
    for a, arch in enumerate(world.ARCHETYPES):
        sectors = [p.config.sector for p in plans]
        weights[a] = [arch.sector_affinity[s] * world.SECTOR_POPULARITY[s] for s in sectors]
        mine = archetype == a
        probs = np.array(arch.breadth) / sum(arch.breadth)
        breadth[mine] = rng.choice(len(probs), size=int(mine.sum()), p=probs) + 1
    keys = np.log(weights[archetype]) + rng.gumbel(size=(n, m))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return rank < np.minimum(breadth, m)[:, None]


def _pick(rng: np.random.Generator, pool: pl.Series, size: int) -> pl.Series:
    return pool.gather(rng.integers(0, len(pool), size))


def _country_frame(
    rng: np.random.Generator,
    country: world.Country,
    person_ids: np.ndarray,
    seed: int,
    suffix_domain: int,
) -> pl.DataFrame:
    """Names, address and canonical identifiers for the persons of one country."""
    n = len(person_ids)
    lp = locale_pool(country.locale)
    handle = _pick(rng, lp.handles, n)
    sep = pl.Series(_SEPARATORS).gather(rng.integers(0, len(_SEPARATORS), n))
    suffix = digits(permute(person_ids, suffix_domain, derive_key(seed, "email")), 1)
    domain = pl.Series(world.EMAIL_DOMAINS).gather(rng.integers(0, len(world.EMAIL_DOMAINS), n))
    alt_handle = _pick(rng, lp.handles, n)
    alt_suffix = digits(permute(person_ids, suffix_domain, derive_key(seed, "alt_email")), 1)
    alt_domain = pl.Series(world.ALT_EMAIL_DOMAINS).gather(
        rng.integers(0, len(world.ALT_EMAIL_DOMAINS), n)
    )
    pool = phone_pool(country.code)
    nsn = phone_numbers(pool, person_ids, derive_key(seed, f"phone/{country.code}"))
    number = pl.Series(rng.integers(1, 200, n)).cast(pl.String)
    return pl.DataFrame(
        {
            "person_id": person_ids,
            "first_name": _pick(rng, lp.first_names, n),
            "last_name": _pick(rng, lp.last_names, n),
            "address": number
            + " "
            + _pick(rng, lp.streets, n)
            + ", "
            + _pick(rng, lp.postcodes, n)
            + " "
            + _pick(rng, lp.cities, n),
            "email": handle + sep + suffix + "@" + domain,
            "alt_email": alt_handle + "." + alt_suffix + "@" + alt_domain,
            "phone_nsn": nsn,
        }
    )


def generate_persons(
    rng: np.random.Generator,
    first_person: int,
    n: int,
    total_persons: int,
    plans: list[MaisonPlan],
    seed: int,
    as_of: date,
) -> PersonChunk:
    """Draw `n` persons numbered from `first_person`; `total_persons` sizes the id spaces."""
    person_id = np.arange(first_person, first_person + n, dtype=np.int64)
    shares = np.array([a.share for a in world.ARCHETYPES])
    archetype = rng.choice(len(shares), size=n, p=shares / shares.sum()).astype(np.int8)
    cw = np.array([c.weight for c in world.COUNTRIES])
    country = rng.choice(len(cw), size=n, p=cw / cw.sum()).astype(np.int16)
    membership = _memberships(rng, archetype, plans)

    spend_mu = np.array([a.spend_mu for a in world.ARCHETYPES])[archetype]
    spend_log = spend_mu + world.PERSON_SPEND_SIGMA * rng.standard_normal(n)
    activity = rng.gamma(1.5, 1 / 1.5, n)
    consent_z = rng.standard_normal(n)
    n_maisons = membership.sum(axis=1)
    uses_alt = (n_maisons >= 2) & (rng.random(n) < world.ALT_EMAIL)
    # The alternative email goes to one of the person's maisons, chosen uniformly.
    pick = np.argmax(membership * rng.random(membership.shape), axis=1)
    alt_maison = np.where(uses_alt, pick, -1).astype(np.int16)

    suffix_domain = 10 ** max(5, len(str(total_persons)) + 1)
    frames = []
    for c, country_def in enumerate(world.COUNTRIES):
        mine = np.flatnonzero(country == c)
        if len(mine):
            frames.append(_country_frame(rng, country_def, person_id[mine], seed, suffix_domain))
    frame = pl.concat(frames).sort("person_id").drop("person_id")

    age_mean = np.array([a.age_mean for a in world.ARCHETYPES])[archetype]
    age_days = np.clip(rng.normal(age_mean, 13, n), 18, 92) * 365.25
    birth = np.datetime64(as_of, "D") - age_days.astype(np.int64)
    has_email = rng.random(n) < PERSON_HAS_EMAIL
    has_phone = (rng.random(n) < PERSON_HAS_PHONE) | uses_alt  # the link is the phone
    frame = frame.with_columns(
        birth_date=pl.Series(birth),
        email=pl.when(pl.Series(has_email)).then(pl.col("email")),
        phone_nsn=pl.when(pl.Series(has_phone)).then(pl.col("phone_nsn")),
    )
    return PersonChunk(
        person_id,
        archetype,
        country,
        membership,
        spend_log,
        activity,
        consent_z,
        alt_maison,
        frame,
    )
