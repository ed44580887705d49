"""The fixed facts of the synthetic world: countries, preference archetypes, prices, seasons.

Everything a run draws at random is drawn elsewhere from a seeded generator; this module only
holds the parameters of the generative model (see docs/synthetic-data.md), so they can be read
and tuned in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is loaded by the two functions that compute with it: every command's
    import numpy as np  # --help reads this module's defaults (cli/synth.py)

DEFAULT_AS_OF = date(2026, 9, 30)
DEFAULT_SEED = 20260930
DEFAULT_PERSONS = 50_000
CHUNK_PERSONS = 250_000
HISTORY_YEARS = 5
EXPORT_YEARS = 3
# The longest customer history; keeps order keys (person_id * 4096 + seq) inside 10**12.
MAX_ORDERS_PER_CUSTOMER = 4_000
MAX_PERSONS = 100_000_000


@dataclass(frozen=True)
class Country:
    code: str  # ISO 3166-1 alpha-2, also the phonenumbers region
    currency: str  # ISO 4217, must be listed in pipelines/fx.toml
    locale: str  # Faker locale for names, streets and cities
    weight: float  # share of the group's clientele


COUNTRIES: tuple[Country, ...] = (
    Country("FR", "EUR", "fr_FR", 0.13),
    Country("DE", "EUR", "de_DE", 0.06),
    Country("IT", "EUR", "it_IT", 0.06),
    Country("ES", "EUR", "es_ES", 0.04),
    Country("GB", "GBP", "en_GB", 0.07),
    Country("CH", "CHF", "fr_CH", 0.04),
    Country("SE", "SEK", "sv_SE", 0.01),
    Country("DK", "DKK", "da_DK", 0.01),
    Country("US", "USD", "en_US", 0.15),
    Country("CA", "CAD", "en_CA", 0.03),
    Country("BR", "BRL", "pt_BR", 0.03),
    Country("MX", "MXN", "es_MX", 0.03),
    Country("JP", "JPY", "ja_JP", 0.07),
    Country("CN", "CNY", "zh_CN", 0.09),
    Country("HK", "HKD", "zh_TW", 0.03),
    Country("SG", "SGD", "en_GB", 0.02),
    Country("KR", "KRW", "ko_KR", 0.04),
    Country("AU", "AUD", "en_AU", 0.02),
    Country("AE", "AED", "ar_AE", 0.03),
    Country("SA", "SAR", "ar_SA", 0.02),
)

# Currencies priced in whole units: amounts are rounded to the unit, not the cent.
WHOLE_UNIT_CURRENCIES = frozenset({"JPY", "KRW"})
# Currency of a purchase made abroad (the maisons' flagship boutiques are in Europe).
TRAVEL_CURRENCY = "EUR"

W_J = "Watches & Jewelry"
F_L = "Fashion & Leather Goods"
P_C = "Perfumes & Cosmetics"
W_S = "Wines & Spirits"
S_R = "Selective Retailing"
H_O = "Hospitality & Other"


@dataclass(frozen=True)
class Archetype:
    """A latent preference profile; it drives maisons, categories, frequency, spend, channel."""

    name: str
    share: float  # share of persons
    sector_affinity: dict[str, float]  # relative odds of being a customer of a sector's maison
    breadth: tuple[float, ...]  # P(customer of 1, 2, 3, ... maisons)
    orders: float  # mean orders per maison over five years, in the archetype's home sector
    basket: float  # mean extra lines per order (Poisson)
    spend_mu: float  # log-scale spend multiplier of the person, before individual noise
    online: float  # mean online share of orders
    other: float  # share of orders through other channels (concierge, travel desk, events)
    seasonal: float  # strength of the gifting peaks (1 = average)
    summer: float  # extra weight of July-August (holidays)
    travel: float  # share of boutique orders placed abroad, paid in EUR
    age_mean: float


# fmt: off  (a parameter table: one archetype per block reads better than one value per line)
_BREADTH = (0.62, 0.22, 0.10, 0.04, 0.015, 0.005)
ARCHETYPES: tuple[Archetype, ...] = (
    Archetype(
        name="jewelry collector",
        share=0.10,
        sector_affinity={W_J: 7, F_L: 1.5, P_C: 0.6, W_S: 0.5, S_R: 0.6, H_O: 1.0},
        breadth=_BREADTH,
        orders=3.0,
        basket=0.15,
        spend_mu=0.45,
        online=0.12,
        other=0.06,
        seasonal=1.2,
        summer=0.0,
        travel=0.12,
        age_mean=52,
    ),
    Archetype(
        name="beauty loyalist",
        share=0.21,
        sector_affinity={W_J: 0.3, F_L: 0.8, P_C: 7, W_S: 0.3, S_R: 3.0, H_O: 0.4},
        breadth=_BREADTH,
        orders=6.5,
        basket=0.9,
        spend_mu=-0.25,
        online=0.48,
        other=0.02,
        seasonal=1.0,
        summer=0.0,
        travel=0.04,
        age_mean=36,
    ),
    Archetype(
        name="fashion-forward",
        share=0.19,
        sector_affinity={W_J: 1.0, F_L: 7, P_C: 1.5, W_S: 0.3, S_R: 2.0, H_O: 0.6},
        breadth=_BREADTH,
        orders=4.5,
        basket=0.5,
        spend_mu=0.05,
        online=0.40,
        other=0.03,
        seasonal=1.0,
        summer=0.1,
        travel=0.10,
        age_mean=34,
    ),
    Archetype(
        name="wine & spirits connoisseur",
        share=0.09,
        sector_affinity={W_J: 0.4, F_L: 0.4, P_C: 0.3, W_S: 7, S_R: 1.2, H_O: 2.0},
        breadth=_BREADTH,
        orders=4.5,
        basket=0.8,
        spend_mu=0.1,
        online=0.30,
        other=0.22,
        seasonal=1.3,
        summer=0.0,
        travel=0.05,
        age_mean=50,
    ),
    Archetype(
        name="omni-luxury",
        share=0.05,
        sector_affinity={W_J: 2.2, F_L: 2.2, P_C: 1.6, W_S: 1.6, S_R: 1.4, H_O: 1.8},
        breadth=(0.08, 0.16, 0.24, 0.22, 0.15, 0.09, 0.04, 0.02),
        orders=5.0,
        basket=0.5,
        spend_mu=0.65,
        online=0.25,
        other=0.08,
        seasonal=1.0,
        summer=0.2,
        travel=0.20,
        age_mean=47,
    ),
    Archetype(
        name="occasional gifter",
        share=0.25,
        sector_affinity={W_J: 1.4, F_L: 1.0, P_C: 2.5, W_S: 1.5, S_R: 2.0, H_O: 0.3},
        breadth=(0.72, 0.19, 0.07, 0.02),
        orders=1.8,
        basket=0.2,
        spend_mu=-0.4,
        online=0.35,
        other=0.02,
        seasonal=3.0,
        summer=0.0,
        travel=0.04,
        age_mean=44,
    ),
    Archetype(
        name="hospitality traveller",
        share=0.11,
        sector_affinity={W_J: 0.6, F_L: 1.0, P_C: 0.6, W_S: 1.8, S_R: 0.8, H_O: 7},
        breadth=_BREADTH,
        orders=2.6,
        basket=0.6,
        spend_mu=0.25,
        online=0.45,
        other=0.30,
        seasonal=0.7,
        summer=0.9,
        travel=0.30,
        age_mean=45,
    ),
)
# fmt: on
ARCHETYPE_NAMES = tuple(a.name for a in ARCHETYPES)

# How large a maison's clientele is, by sector (beauty and department stores reach most people).
SECTOR_POPULARITY = {W_J: 0.8, F_L: 1.4, P_C: 2.2, W_S: 1.0, S_R: 2.0, H_O: 0.6}

# Median price of one purchase line in EUR, by group category; the spend of a line is this
# level times the person's lognormal multiplier times lognormal noise (a long right tail).
# fmt: off
PRICE_EUR = {
    "Fine Jewelry": 3_200, "High Jewelry": 42_000, "Watches": 8_500, "Bridal": 5_500,
    "Leather Goods": 2_700, "Small Leather Goods": 520, "Ready-to-Wear": 1_300,
    "Shoes": 820, "Accessories": 430,
    "Fragrance": 135, "Skincare": 170, "Makeup": 55, "Gift Sets": 150,
    "Champagne": 85, "Wine": 240, "Cognac & Spirits": 290, "Tastings": 120,
    "Beauty Retail": 90, "Fashion Retail": 560, "Home": 330, "Gourmet": 55,
    "Stays": 1_150, "Dining": 240, "Wellness": 210, "Events": 3_200,
}
# fmt: on
LINE_PRICE_SIGMA = 0.45
PERSON_SPEND_SIGMA = 0.6
MAX_LINE_EUR = 2_000_000.0  # keeps every amount inside Decimal(12, 2) in any currency

# Labels a CRM carries that the maison's [categories] map does not know.
UNMAPPED_LABELS = ("Divers", "Archive", "Hors collection", "Misc", "Legacy SKU", "Retouches")
UNMAPPED_SHARE = 0.015

# Dirty data rates (per customer record unless stated).
EMAIL_MISSING = 0.09
PHONE_MISSING = 0.16
COUNTRY_MISSING = 0.02
INVALID_PHONE = 0.01
PLACEHOLDER_EMAIL = 0.015
PLACEHOLDER_PHONE = 0.01
PLACEHOLDER_MIN = 5  # at least this many records per maison and chunk share a placeholder
ALT_EMAIL = 0.10  # persons at 2+ maisons who use another email at one of them
NO_PURCHASE = 0.04  # customers known to the CRM without a purchase in five years
RETURN_SHARE = 0.03  # lines refunded later (negative amount)
BOUNDARY_SHARE = 0.0004  # orders moved exactly onto the 3-year boundary, and onto as-of
FUTURE_SHARE = 0.0002  # orders dated after as-of (clock errors, pre-orders)
RESTRICTED = 0.015
CONSENT_RATE_RANGE = (0.34, 0.66)  # per maison, spread evenly then shuffled by the seed
CONSENT_AFTER_AS_OF = 0.03  # of consents, recorded after the as-of date
CONSENT_NEVER_ASKED = 0.12  # of refusals, no consent_updated_at at all

# Reserved domains only (RFC 2606 / RFC 6761): example.com/.net/.org, their subdomains,
# and names under the .example top-level domain.
EMAIL_DOMAINS = (
    "example.com",
    "example.net",
    "example.org",
    "mail.example.com",
    "post.example.net",
    "inbox.example.org",
    "mail.example",
    "courriel.example",
    "webmail.example",
)
ALT_EMAIL_DOMAINS = ("work.example.com", "office.example.org", "corp.example")
PLACEHOLDER_EMAILS = (
    "noemail@example.com",
    "no-email@example.org",
    "none@example.net",
    "client@example.com",
)


def shift_years(d: date, years: int) -> date:
    """The same calendar day `years` later (or earlier); 29 February falls back to the 28th."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def history_days(as_of: date) -> np.ndarray:
    """Every day of the five-year history, as-of included, as datetime64[D]."""
    import numpy as np

    start = np.datetime64(shift_years(as_of, -HISTORY_YEARS), "D")
    return np.arange(start, np.datetime64(as_of, "D") + 1, dtype="datetime64[D]")


def seasonal_weights(days: np.ndarray, archetype: Archetype) -> np.ndarray:
    """Relative purchase intensity per day: Q4 and gifting peaks, summer, slow growth."""
    import numpy as np

    months = days.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    dom = (days - months).astype(np.int64) + 1
    gifting = np.zeros(len(days))
    gifting += np.where(month == 10, 0.15, 0.0) + np.where(month == 11, 0.4, 0.0)
    gifting += np.where((month == 12) & (dom <= 24), 0.6 + 1.6 * dom / 24, 0.0)
    gifting += np.where((month == 12) & (dom > 24), 0.3, 0.0)
    gifting += np.where((month == 2) & (dom <= 14), 0.9, 0.0)  # Valentine's
    for year in range(
        int(days[0].astype("datetime64[Y]").astype(int)) + 1970,
        int(days[-1].astype("datetime64[Y]").astype(int)) + 1971,
    ):
        may1 = np.datetime64(f"{year}-05-01")
        first_sunday = may1 + (7 - (may1.astype(np.int64) - 3) % 7) % 7  # 1970-01-04: Sunday
        mothers_day = first_sunday + 7
        gifting += np.where((days > mothers_day - 10) & (days <= mothers_day), 1.0, 0.0)
    summer = np.where((month == 7) | (month == 8), archetype.summer - 0.15, 0.0)
    years = (days - days[0]).astype(np.int64) / 365.25
    return (1.0 + archetype.seasonal * gifting + summer) * (1.0 + 0.05 * years)
