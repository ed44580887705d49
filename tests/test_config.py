"""The shipped configuration is valid, and bad configuration is refused with every problem."""

import os
from pathlib import Path

import pytest

from crossgroup.config import (
    Family,
    demo_maisons,
    load_fx,
    load_group,
    load_maison,
    load_taxonomy,
)
from crossgroup.errors import InputError

REQUIRED_CURRENCIES = {"EUR", "USD", "GBP", "CHF", "JPY", "CNY", "HKD", "SGD", "AED", "KRW"}


def test_taxonomy_has_six_sectors_each_with_catch_all():
    taxonomy = load_taxonomy()
    assert len(taxonomy.sectors) == 6
    for sector in taxonomy.sectors:
        assert 3 <= len(sector.categories) <= 6
        assert sector.catch_all not in sector.categories
    mapping = taxonomy.category_sector()
    assert len(mapping) == sum(len(s.categories) + 1 for s in taxonomy.sectors)


def test_fx_covers_required_currencies():
    assert set(load_fx().eur_per_unit) >= REQUIRED_CURRENCIES


def test_eight_demo_maisons_spread_over_sectors_with_own_vocabularies():
    maisons = demo_maisons()
    assert len(maisons) == 8
    assert len({m.sector for m in maisons}) >= 5
    vocabularies = [frozenset(m.categories) for m in maisons]
    assert len(set(vocabularies)) == 8
    french = [
        m
        for m in maisons
        if any(
            c != c.encode("ascii", "ignore").decode()
            or c.split()[0] in {"Sacs", "Bagues", "Soins", "Cognac"}
            for c in m.categories
        )
    ]
    assert len(french) >= 3
    taxonomy = load_taxonomy()
    for m in maisons:
        sector_categories = set(taxonomy.sector(m.sector).categories)
        assert set(m.categories.values()) & sector_categories, m.id


def test_group_defaults_match_design():
    group = load_group()
    assert group.k == 10
    assert group.k_aggregate == 50
    assert len(group.maisons) == 8


def test_bad_maison_config_lists_every_problem(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'id = "Bad Id"\nname = ""\nsector = "Cars"\n'
        'placeholder_max_customers = 0\n[categories]\n"X" = "Nope"\n'
    )
    with pytest.raises(InputError) as e:
        load_maison(bad)
    message = str(e.value)
    for fragment in ("id must", "name is required", "'Cars'", "'Nope'", "placeholder_max"):
        assert fragment in message
    assert "\n" not in message


def test_missing_and_invalid_toml_are_input_errors(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        load_fx(tmp_path / "missing.toml")
    broken = tmp_path / "fx.toml"
    broken.write_text("[eur_per_unit\nEUR = 1")
    with pytest.raises(InputError, match="not valid TOML"):
        load_fx(broken)
    negative = tmp_path / "neg.toml"
    negative.write_text("[eur_per_unit]\nEUR = -1\neur = 1\n")
    with pytest.raises(InputError) as e:
        load_fx(negative)
    assert "positive" in str(e.value) and "ISO 4217" in str(e.value)


# ------------------------------------------------------------ sector vocabulary (taxonomy)

SHIPPED = Path(__file__).resolve().parents[1] / "pipelines"
SECTOR_VOCABULARY = {  # sector: (label word, family), as released before issue 11
    "Watches & Jewelry": ("Jewelry", "Jewelry & Fashion"),
    "Fashion & Leather Goods": ("Fashion", "Jewelry & Fashion"),
    "Perfumes & Cosmetics": ("Beauty", "Beauty & Retail"),
    "Wines & Spirits": ("Wine & spirits", "Wines, Hospitality & Other"),
    "Selective Retailing": ("Retail", "Beauty & Retail"),
    "Hospitality & Other": ("Hospitality", "Wines, Hospitality & Other"),
}
FAMILY_WORDS = {
    "Jewelry & Fashion": "Jewelry-fashion",
    "Beauty & Retail": "Beauty-retail",
    "Wines, Hospitality & Other": "Wine-hospitality",
}


def test_shipped_taxonomy_holds_the_sector_vocabulary():
    taxonomy = load_taxonomy(SHIPPED / "taxonomy.toml")
    assert {s.name: (s.word, s.family) for s in taxonomy.sectors} == SECTOR_VOCABULARY
    assert taxonomy.family_names == tuple(FAMILY_WORDS)
    assert taxonomy.families == tuple(Family(n, w) for n, w in FAMILY_WORDS.items())
    assert taxonomy.pooled == Family("Other sectors", "Other-sectors")
    for sector, (word, family) in SECTOR_VOCABULARY.items():
        assert taxonomy.word(sector) == word
        assert taxonomy.family_of(sector) == family
    for family, word in FAMILY_WORDS.items():
        assert taxonomy.word(family) == word
    assert taxonomy.word("Other sectors") == "Other-sectors"
    for unknown in ("Cars", "Jewelry", "other sectors"):
        with pytest.raises(KeyError):
            taxonomy.word(unknown)
    with pytest.raises(KeyError):
        taxonomy.family_of("Jewelry & Fashion")


def test_every_shipped_configuration_file_loads():
    taxonomy = load_taxonomy(SHIPPED / "taxonomy.toml")
    load_fx(SHIPPED / "fx.toml")
    group = load_group(SHIPPED / "group.toml")
    maisons = sorted(SHIPPED.glob("maisons/*.toml"))
    assert {p.stem for p in maisons} == set(group.maisons)
    for path in maisons:
        load_maison(path, taxonomy)


def shipped_taxonomy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The shipped taxonomy with each (old, new) text edit applied once."""
    text = (SHIPPED / "taxonomy.toml").read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) >= 1, old
        text = text.replace(old, new, 1)
    path = tmp_path / "taxonomy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(load, path: Path) -> str:
    with pytest.raises(InputError) as e:
        load(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("edits", "fragment"),
    [
        (
            [('word = "Fashion"\n', "")],
            "sector 'Fashion & Leather Goods' needs a word",
        ),
        (
            [('word = "Beauty"\nfamily = "Beauty & Retail"\n', 'word = "Beauty"\n')],
            "sector 'Perfumes & Cosmetics' needs a family",
        ),
        (
            [('family = "Beauty & Retail"', 'family = "Beauty and Retail"')],
            "sector 'Perfumes & Cosmetics' has family 'Beauty and Retail', which is not a "
            "declared [[family]]",
        ),
        (
            [('name = "Beauty & Retail"', 'name = "Selective Retailing"')]
            + [('family = "Beauty & Retail"', 'family = "Selective Retailing"')] * 2,
            "name 'Selective Retailing' is used more than once (family, sector)",
        ),
        (
            [('name = "Other sectors"', 'name = "Jewelry & Fashion"')],
            "name 'Jewelry & Fashion' is used more than once (family, [pooled])",
        ),
        (
            [('word = "Retail"', 'word = "  "')],
            "sector 'Selective Retailing' needs a word",
        ),
        (
            [('word = "Retail"', 'word = "beauty"')],
            "word 'Beauty' is used more than once (sector 'Perfumes & Cosmetics', "
            "sector 'Selective Retailing')",
        ),
        (
            [('word = "Other-sectors"', 'word = "Jewelry-Fashion"')],
            "word 'Jewelry-fashion' is used more than once (family 'Jewelry & Fashion', "
            "[pooled] 'Other sectors')",
        ),
        (
            [('word = "Beauty-retail"', 'word = "Beauty & retail"')],
            "family 'Beauty & Retail' word 'Beauty & retail' must not contain '&'",
        ),
        (
            [("[[sector]]", '[[family]]\nname = "Unused"\nword = "Unused"\n\n[[sector]]')],
            "family 'Unused' holds no sector",
        ),
        (
            [("[pooled]", "[other]")],
            "no [pooled] table",
        ),
    ],
)
def test_each_taxonomy_rule_is_refused(tmp_path: Path, edits, fragment):
    assert fragment in refusal(load_taxonomy, shipped_taxonomy(tmp_path, *edits))


def test_taxonomy_lists_every_problem_in_one_line(tmp_path: Path):
    path = shipped_taxonomy(
        tmp_path,
        ('word = "Fashion"\n', ""),
        ('family = "Beauty & Retail"', 'family = "Beauty and Retail"'),
        ('word = "Hospitality"', 'word = "Jewelry"'),
        ('word = "Wine-hospitality"', 'word = ""'),
        ('name = "Other sectors"\nword = "Other-sectors"\n', ""),
    )
    message = refusal(load_taxonomy, path)
    for fragment in (
        "sector 'Fashion & Leather Goods' needs a word",
        "has family 'Beauty and Retail', which is not a declared [[family]]",
        "word 'Jewelry' is used more than once",
        "family 'Wines, Hospitality & Other' needs a word",
        "[pooled] has no name",
        "[pooled] needs a word",
    ):
        assert fragment in message


# ------------------------------------------------------------ unknown keys, every file kind


def test_unknown_taxonomy_keys_are_named_with_their_table(tmp_path: Path):
    path = shipped_taxonomy(
        tmp_path,
        ("[[family]]", "version = 2\n\n[[family]]"),
        ('word = "Jewelry-fashion"', 'word = "Jewelry-fashion"\nwrod = "x"'),
        ('word = "Other-sectors"', 'word = "Other-sectors"\nmin_maisons = 3'),
        ('word = "Retail"', 'word = "Retail"\ncatchall = "Other"'),
    )
    message = refusal(load_taxonomy, path)
    for fragment in (
        "unknown top-level key version",
        "unknown key [[family]] wrod (in family 'Jewelry & Fashion')",
        "unknown key [pooled] min_maisons",
        "unknown key [[sector]] catchall (in sector 'Selective Retailing')",
    ):
        assert fragment in message


def test_unknown_fx_keys_are_named(tmp_path: Path):
    path = tmp_path / "fx.toml"
    path.write_text('base = "EUR"\n[eur_per_unit]\nEUR = 1.0\n[monthly."2026-01"]\nUSD = 0.9\n')
    message = refusal(load_fx, path)
    assert "unknown top-level key base" in message
    assert "unknown top-level key monthly" in message


def test_unknown_maison_keys_are_named_and_categories_stay_free_form(tmp_path: Path):
    base = (SHIPPED / "maisons" / "aurelle.toml").read_text(encoding="utf-8")
    free = tmp_path / "free.toml"
    free.write_text(base + '"any label, even sector = x" = "Watches"\n', encoding="utf-8")
    assert load_maison(free).categories["any label, even sector = x"] == "Watches"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        base.replace("placeholder_max_customers", "placeholder_max_customer").replace(
            "[categories]", "[categorie]"
        ),
        encoding="utf-8",
    )
    message = refusal(load_maison, bad)
    assert "unknown top-level key placeholder_max_customer" in message
    assert "unknown top-level key categorie" in message


def test_misspelt_privacy_setting_is_refused_not_run_with_its_default(tmp_path: Path):
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    path = tmp_path / "group.toml"
    path.write_text(base.replace("[privacy]\n", '[privacy]\ngroup_figure = "dp"\n'))
    assert refusal(load_group, path) == f"{path}: unknown key [privacy] group_figure"


def test_unknown_group_keys_are_named_with_their_table(tmp_path: Path):
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    edits = {
        "k_aggregate = 50": "k_agregate = 50",
        "[batch]\n": "[batch]\nmaison = []\n",
        "sample_size = ": "sample = 1\nsample_size = ",
        "threads = 2": 'threads = 2\nengine = "spark"\nspark_master = "local[2]"',
        "returns_days = 90": "return_days = 90",
        "[retention]": '[register]\ncontact = "dpo@example.org"\nemail = "x"\n\n[retention]',
    }
    for old, new in edits.items():
        assert old in base, old
        base = base.replace(old, new, 1)
    path = tmp_path / "group.toml"
    path.write_text(base + "\n[privcy]\nk = 5\n", encoding="utf-8")
    message = refusal(load_group, path)
    for fragment in (
        "unknown top-level key privcy",
        "unknown key [batch] maison",
        "unknown key [privacy] k_agregate",
        "unknown key [segmentation] sample",
        "unknown key [engine] engine",
        "unknown key [engine] spark_master",
        "unknown key [retention] return_days",
        "unknown key [register] email",
    ):
        assert fragment in message
    assert "contact" not in message


def test_allow_missing_is_off_unless_the_pipeline_says_true(tmp_path: Path):
    """A late maison refuses the batch unless `[batch] allow_missing = true` (issue 15)."""
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    assert "\nallow_missing = false\n" in base
    assert load_group(SHIPPED / "group.toml").allow_missing is False
    path = tmp_path / "group.toml"
    path.write_text(base.replace("allow_missing = false", "allow_missing = true"), "utf-8")
    assert load_group(path).allow_missing is True
    path.write_text(base.replace("allow_missing = false", 'allow_missing = "yes"'), "utf-8")
    assert "[batch] allow_missing must be true or false" in refusal(load_group, path)


@pytest.mark.parametrize(
    ("setting", "message"),
    [('kind = "sparky"', "[engine] kind must be one of duckdb, spark"),
     ('master = ""', "[engine] master must be a Spark master URL")],
)  # fmt: skip
def test_an_unknown_engine_or_an_empty_master_is_refused(tmp_path: Path, setting, message):
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    key = setting.split(" = ")[0]
    line = next(x for x in base.splitlines() if x.startswith(f"{key} = "))
    path = tmp_path / "group.toml"
    path.write_text(base.replace(line, setting, 1), encoding="utf-8")
    assert message in refusal(load_group, path)
    assert load_group(SHIPPED / "group.toml").engine == "duckdb"


def _group_with(tmp_path: Path, engine_lines: str) -> Path:
    """The shipped group.toml with `engine_lines` added at the end of its [engine] table."""
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    assert "\n[retention]" in base
    path = tmp_path / "group.toml"
    path.write_text(base.replace("\n[retention]", f"\n{engine_lines}\n\n[retention]", 1))
    return path


def test_spark_settings_pass_through_verbatim_quoted_or_dotted(tmp_path: Path):
    """[engine.spark] holds Spark's own setting names; a bare dotted key (which TOML nests)
    reads as the same setting as the quoted one, and the value goes to Spark as written."""
    path = _group_with(
        tmp_path,
        "[engine.spark]\n"
        '"spark.executor.memory" = "8g"\n'
        'spark.executor.instances = "4"\n'
        'spark.sql.shuffle.partitions = "400"\n'
        'spark.kerberos.keytab = "/etc/security/crossgroup.keytab"',
    )
    assert load_group(path).spark_settings == {
        "spark.executor.memory": "8g",
        "spark.executor.instances": "4",
        "spark.sql.shuffle.partitions": "400",
        "spark.kerberos.keytab": "/etc/security/crossgroup.keytab",
    }
    assert load_group(SHIPPED / "group.toml").spark_settings == {}


@pytest.mark.parametrize(
    ("key", "reason"),
    [("spark.local.dir", "private working directory"),
     ("spark.sql.warehouse.dir", "private working directory"),
     ("spark.eventLog.enabled", "event logs"),
     ("spark.eventLog.dir", "event logs"),
     ("spark.ui.enabled", "web UI"),
     ("spark.ui.port", "web UI"),
     ("spark.extraListeners", "query plan"),
     ("spark.sql.catalogImplementation", "metastore"),
     ("spark.sql.session.timeZone", "same tables"),
     ("spark.master", "[engine] master"),
     ("spark.remote", "Spark Connect is not supported"),
     ("spark.submit.deployMode", "holds the processor's keys")],
)  # fmt: skip
def test_a_spark_setting_a_guarantee_rests_on_cannot_be_set(tmp_path: Path, key, reason):
    path = _group_with(tmp_path, f'[engine.spark]\n"{key}" = "x"')
    message = refusal(load_group, path)  # an InputError: exit code 2
    assert f"[engine.spark] {key} cannot be set: " in message and reason in message


def test_bad_spark_settings_are_all_named_at_once(tmp_path: Path):
    path = _group_with(
        tmp_path,
        "[engine.spark]\n"
        "spark.executor.instances = 4\n"
        "spark.dynamicAllocation.enabled = true\n"
        'executor.memory = "8g"\n'
        '"spark.hadoop.fs.s3a.secret.key" = "abc"\n'
        '"spark.ssl.keyStorePassword" = "abc"\n'
        'spark.ui.showConsoleProgress = "false"\n'
        'spark.io.encryption.enabled = "false"\n'
        'spark.network.crypto.enabled = "true"',
    )
    message = refusal(load_group, path)
    for fragment in (
        "[engine.spark] spark.executor.instances must be a string",
        "[engine.spark] spark.dynamicAllocation.enabled must be a string",
        "[engine.spark] executor.memory is not a Spark setting",
        "[engine.spark] spark.hadoop.fs.s3a.secret.key is a secret",
        "[engine.spark] spark.ssl.keyStorePassword is a secret",
        "[engine.spark] spark.ui.showConsoleProgress cannot be set",
        '[engine.spark] spark.io.encryption.enabled may only be "true"',
    ):
        assert fragment in message
    assert "spark.network.crypto.enabled" not in message  # turned on: welcome
    assert "abc" not in message  # a secret's value is never repeated


CONNECT = "sc://spark.example.org:15002"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [("threads = 2", f'threads = 2\nremote = "{CONNECT}"', "[engine] remote: Spark Connect is not"),
     ('master = "local[*]"', f'master = "{CONNECT}"', "[engine] master: Spark Connect is not"),
     ("threads = 2", 'threads = 2\nspark = "spark.executor.memory=8g"',
      "[engine.spark] must be a table of Spark settings"),
     ("\n[retention]", '\n[engine.spark]\nspark = "8g"\n[retention]',
      "[engine.spark] spark is not a Spark setting")],
)  # fmt: skip
def test_spark_connect_and_a_bad_shape_of_engine_spark_are_refused(tmp_path, old, new, message):
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    assert old in base
    path = tmp_path / "group.toml"
    path.write_text(base.replace(old, new, 1), encoding="utf-8")
    assert message in refusal(load_group, path)


def test_group_table_that_is_not_a_table_is_refused(tmp_path: Path):
    path = tmp_path / "group.toml"
    path.write_text('privacy = 5\n[batch]\nmaisons = ["aurelle", "kessler"]\n')
    assert "[privacy] must be a table" in refusal(load_group, path)


def test_a_retention_period_beyond_the_calendar_is_refused(tmp_path: Path):
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    path = tmp_path / "group.toml"
    path.write_text(base.replace("returns_days = 90", "returns_days = 1000000000"))
    assert "retention returns_days must be a whole number of days from 0 to 36500" in refusal(
        load_group, path
    )


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_config_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path, kind: str):
    path = tmp_path / "fx.toml"
    path.mkdir() if kind == "folder" else os.mkfifo(path)  # a FIFO would block open()
    expected = "a directory" if kind == "folder" else "a FIFO (named pipe)"
    with pytest.raises(InputError) as e:
        load_fx(path)
    assert str(e.value) == f"configuration file {path} is {expected}, expected a file"


def test_the_series_model_settings_are_read_and_bad_values_refused(tmp_path: Path):
    """`[segmentation] refit` and its drift limits (group/model_state.py), shipped as the
    defaults; a value outside the choices, or a limit that is not a positive number, is
    refused by name, and a misspelt key as unknown."""
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    group = load_group(SHIPPED / "group.toml")
    assert (group.refit, group.max_model_age_months) == ("auto", 12)
    assert (group.max_mix_psi, group.max_distance_growth) == (0.2, 0.25)
    path = tmp_path / "group.toml"
    path.write_text(base.replace('refit = "auto"', 'refit = "never"'), "utf-8")
    assert load_group(path).refit == "never"
    for old, new, fragment in (
        ('refit = "auto"', 'refit = "sometimes"', "[segmentation] refit must be one of"),
        ("max_mix_psi = 0.2", "max_mix_psi = -1", "[segmentation] max_mix_psi must be a positive"),
        ("max_distance_growth = 0.25", 'max_distance_growth = "a lot"', "max_distance_growth must"),
        ("max_model_age_months = 12", "max_model_age_months = 0", "max_model_age_months must"),
        # read after the problems were reported, these two fell back to their defaults
        ("sample_size = 200000", "sample_size = 0", "sample_size must be a positive"),
        ("threads = 2", "threads = -2", "threads must be a positive"),
        ('refit = "auto"', 'refitt = "auto"', "unknown key [segmentation] refitt"),
    ):
        assert old in base, old
        path.write_text(base.replace(old, new), "utf-8")
        assert fragment in refusal(load_group, path)


def test_the_group_figures_settings_are_read_and_bad_values_refused(tmp_path: Path):
    """`[privacy] group_figures` and DP mode's epsilon, delta and yearly budget, shipped as
    the defaults; a mode outside the choices, an epsilon or budget that is not a positive
    number, a delta that is not far below one in a batch's persons, or a budget smaller than
    one release is refused by name."""
    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    group = load_group(SHIPPED / "group.toml")
    assert (group.group_figures, group.epsilon_per_release) == ("threshold", 0.5)
    assert (group.delta, group.epsilon_budget_per_year) == (1e-9, 6.0)
    path = tmp_path / "group.toml"
    path.write_text(base.replace('group_figures = "threshold"', 'group_figures = "dp"'), "utf-8")
    assert load_group(path).group_figures == "dp"
    for old, new, fragment in (
        ('group_figures = "threshold"', 'group_figures = "noise"', "group_figures must be one of"),
        ("epsilon_per_release = 0.5", "epsilon_per_release = 0", "epsilon_per_release must be"),
        ("epsilon_per_release = 0.5", 'epsilon_per_release = "1"', "epsilon_per_release must be"),
        ("delta = 1e-9", "delta = 0.01", "[privacy] delta must be a positive number below 1e-06"),
        ("delta = 1e-9", "delta = true", "[privacy] delta must be a positive number"),
        ("epsilon_budget_per_year = 6.0", "epsilon_budget_per_year = 0.1",
         "epsilon_budget_per_year must be at least epsilon_per_release"),
        ("epsilon_budget_per_year = 6.0", "epsilon_budget_per_year = -6",
         "epsilon_budget_per_year must be a positive"),
        ("delta = 1e-9", "deltta = 1e-9", "unknown key [privacy] deltta"),
    ):  # fmt: skip
        assert old in base, old
        path.write_text(base.replace(old, new), "utf-8")
        assert fragment in refusal(load_group, path)


def test_dp_mode_without_opendp_installed_is_refused_at_load(tmp_path: Path, monkeypatch):
    """`group_figures = "dp"` needs the `dp` extra: said when the pipeline is loaded (exit 2),
    not as a traceback after the batch was decrypted."""
    import importlib.util

    base = (SHIPPED / "group.toml").read_text(encoding="utf-8")
    path = tmp_path / "group.toml"
    path.write_text(base.replace('group_figures = "threshold"', 'group_figures = "dp"'), "utf-8")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "opendp" else real(name, *a)
    )
    assert "needs OpenDP: pip install 'crossgroup[dp]'" in refusal(load_group, path)
