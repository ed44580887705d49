"""Person resolution: records that share a matching token are one person, transitively.

The graph is built in SQL (builders returning `Step`s, run alike on DuckDB and Spark): each
record gets an integer node id, each usable token becomes a star of edges to its smallest
member, and persons are the connected components, found in the engine by alternating
large-star and small-star rounds (Kiveris et al. 2014), whose number grows with the log of
the longest chain of records, not its length. Nothing of the graph comes to this process.
Tokens are typed: an email token and a phone token of equal bytes are different keys.

Placeholders link nobody (DESIGN §5.8). A real person normally has one record per maison and
a few duplicates, so a token is ignored when it is carried by more than
`max_records_per_token` records of one maison, or by more than `max_records_per_token`
records beyond one per maison in total (a `test@test.com` held by 3 customers in each of 8
maisons). A component that still gathers more than `max_records_per_token` records of one
maison (placeholders chained through other tokens) is split back into single records.
"""

from __future__ import annotations

from crossgroup.engine import Engine, Step
from crossgroup.errors import InputError
from crossgroup.group.components import components_in_engine
from crossgroup.group.numbering import dense_numbers

RECORDS = "resolve_records"
NODES = "resolve_nodes"
MEMBERSHIPS = "resolve_memberships"
TOKENS = "resolve_tokens"
GUARDED_TOKENS = "resolve_guarded_tokens"
USABLE = "resolve_usable_memberships"
EDGES = "resolve_edges"
COMPONENTS = "resolve_components"
RAW_COMPONENTS = "resolve_raw_components"
SPLIT_COMPONENTS = "resolve_split_components"
GUARDED_LABELS = "resolve_guarded_labels"
PERSON_NODES = "person_nodes"
PERSON_MAISONS = "resolve_person_maisons"

EMAIL, PHONE = 1, 2  # token types, part of every edge key


def number_records(engine: Engine, identities: str) -> str:
    """Node ids 0..n-1 for the distinct (maison, maison_ref), in that order on every engine.
    Refs are keyed hashes, evenly spread: their first 12 bits split a maison's records into
    up to 4,096 buckets numbered side by side (`numbering`)."""
    return dense_numbers(
        engine,
        RECORDS,
        identities,
        ["maison", "maison_ref", "email_token", "phone_token"],
        keys=["maison", "maison_ref"],
        buckets=["maison", "substr(hex(maison_ref), 1, 3)"],
        number="node_id",
        start=0,
    )


def nodes_step() -> Step:
    return Step(NODES, f"SELECT DISTINCT node_id, maison, maison_ref FROM {RECORDS}")


def memberships_step() -> Step:
    """One row per (node, typed token): the bipartite record-token graph. The two halves
    differ in token_type, so UNION ALL keeps the rows distinct without a third pass."""
    return Step(
        MEMBERSHIPS,
        f"""
        SELECT DISTINCT node_id, maison, {EMAIL}::TINYINT AS token_type, email_token AS token
        FROM {RECORDS} WHERE email_token IS NOT NULL
        UNION ALL
        SELECT DISTINCT node_id, maison, {PHONE}::TINYINT AS token_type, phone_token AS token
        FROM {RECORDS} WHERE phone_token IS NOT NULL
        """,
    )


def tokens_step() -> Step:
    """Every typed token once: its member count and smallest member (its star's root); the
    one pass over the tokens that the guard and the edges both read."""
    return Step(
        TOKENS,
        f"SELECT token_type, token, count(*)::BIGINT AS members, min(node_id) AS root "
        f"FROM {MEMBERSHIPS} GROUP BY token_type, token",
    )


def guarded_tokens_step(max_records_per_token: int) -> Step:
    """Tokens that look like placeholders: held by more records of one maison than the guard
    allows, or by more records beyond one per maison, in total, than the guard allows. A token
    of at most `limit` records (memberships are distinct) breaks neither: only the few above
    it are counted per maison."""
    limit = int(max_records_per_token)
    return Step(
        GUARDED_TOKENS,
        f"""
        SELECT token_type, token, max(records) AS max_records_in_one_maison,
               sum(records)::BIGINT AS records, count(*)::BIGINT AS maisons
        FROM (SELECT m.token_type, m.token, m.maison, count(*) AS records
              FROM {MEMBERSHIPS} m
              JOIN {TOKENS} t ON t.token_type = m.token_type AND t.token = m.token
              WHERE t.members > {limit}
              GROUP BY m.token_type, m.token, m.maison)
        GROUP BY token_type, token
        HAVING max(records) > {limit} OR sum(records) - count(*) > {limit}
        """,
    )


def usable_memberships_step() -> Step:
    return Step(
        USABLE,
        f"""
        SELECT m.node_id, m.token_type, m.token FROM {MEMBERSHIPS} m
        WHERE NOT EXISTS (SELECT 1 FROM {GUARDED_TOKENS} g
                          WHERE g.token_type = m.token_type AND g.token = m.token)
        """,
    )


def edges_step(usable: str = USABLE, *, partition: tuple[str, ...] = (), name: str = EDGES) -> Step:
    """Star edges: every member of a shared token points at the token's smallest member.

    `partition` adds columns to the token key (evaluation uses it to keep edges within one
    true person); the pipeline uses the plain typed token.
    """
    key = ", ".join(("token_type", "token", *partition))
    return Step(
        name,
        f"""
        SELECT u.node_id AS src, r.root AS dst
        FROM {usable} u
        JOIN (SELECT {key}, min(node_id) AS root FROM {usable}
              GROUP BY {key} HAVING count(*) > 1) r USING ({key})
        WHERE u.node_id <> r.root
        """,
    )


def star_edges_step() -> Step:
    """`edges_step` without partition, from the token figures: a usable token is not guarded,
    so all its members are usable and `root` is theirs."""
    return Step(
        EDGES,
        f"SELECT u.node_id AS src, t.root AS dst FROM {USABLE} u JOIN {TOKENS} t "
        "ON t.token_type = u.token_type AND t.token = u.token "
        "WHERE t.members > 1 AND u.node_id <> t.root",
    )


def person_nodes_step(components: str = COMPONENTS) -> Step:
    return Step(
        PERSON_NODES,
        f"""
        SELECT n.maison, n.maison_ref, c.person_id
        FROM {NODES} n JOIN {components} c USING (node_id)
        """,
    )


def split_components_step(max_records_per_token: int) -> Step:
    """Components holding more than the guard's records of one maison (placeholders chained
    through other tokens): they are not one person and are split back into single records.

    Only components of more than `limit` records can, so only theirs are counted per maison.
    """
    limit = int(max_records_per_token)
    return Step(
        SPLIT_COMPONENTS,
        f"""
        SELECT label, sum(records)::BIGINT AS records
        FROM (SELECT c.label, n.maison, count(*) AS records
              FROM {RAW_COMPONENTS} c JOIN {NODES} n USING (node_id)
              WHERE c.label IN (SELECT label FROM {RAW_COMPONENTS}
                                GROUP BY label HAVING count(*) > {limit})
              GROUP BY c.label, n.maison)
        GROUP BY label
        HAVING max(records) > {limit}
        """,
    )


def guarded_labels_step() -> Step:
    """Each node's person label: its component's smallest node, or itself once split."""
    return Step(
        GUARDED_LABELS,
        f"""
        SELECT c.node_id, CASE WHEN s.label IS NULL THEN c.label ELSE c.node_id END AS label
        FROM {RAW_COMPONENTS} c LEFT JOIN {SPLIT_COMPONENTS} s USING (label)
        """,
    )


def resolve_persons(
    engine: Engine,
    identities: str,
    *,
    max_records_per_token: int,
) -> str:
    """Build `person_nodes(maison, maison_ref, person_id)` from an identities table or view.

    Every input record appears once; person_id is deterministic for the same input. Each
    intermediate table is dropped once consumed, but NODES and USABLE (evaluation's).
    """
    if max_records_per_token < 1:
        raise InputError("max_records_per_token must be a positive integer")
    number_records(engine, identities)
    engine.run_all(
        [
            nodes_step(),
            memberships_step(),
            tokens_step(),
            guarded_tokens_step(max_records_per_token),
            usable_memberships_step(),
            star_edges_step(),
        ]
    )
    engine.drop(RECORDS, MEMBERSHIPS, TOKENS)
    components_in_engine(engine, EDGES, NODES, RAW_COMPONENTS)
    engine.drop(EDGES)
    engine.run_all([split_components_step(max_records_per_token), guarded_labels_step()])
    # person ids 1..P by each person's smallest node; labels are node ids, 65,536 to a bucket
    dense_numbers(engine, COMPONENTS, GUARDED_LABELS, ["node_id"], keys=["label"],
                  buckets=["label // 65536"], number="person_id")  # fmt: skip
    engine.drop(RAW_COMPONENTS, GUARDED_LABELS)
    person_nodes = engine.run(person_nodes_step(COMPONENTS))
    engine.drop(COMPONENTS)
    return person_nodes


def drop_evaluation_tables(engine: Engine) -> None:
    """Drop the tables `resolve_persons` keeps for evaluation only (NODES, USABLE): a batch
    run reads `person_nodes` and the match figures' tables, nothing else."""
    engine.drop(NODES, USABLE)


def person_maisons_step(person_nodes: str) -> Step:
    """Each person's maisons, once: the match figures' breadth and overlap both read it."""
    return Step(PERSON_MAISONS, f"SELECT DISTINCT person_id, maison FROM {person_nodes}")


def match_figures(engine: Engine, person_nodes: str, *, k_aggregate: int) -> dict:
    """Counts about the match for the audit log and reports; small overlaps are suppressed."""
    records = engine.count(person_nodes)
    pm = engine.run(person_maisons_step(person_nodes))
    breadth = engine.to_polars(
        f"""
        SELECT n_maisons, count(*) AS persons
        FROM (SELECT person_id, count(*) AS n_maisons FROM {pm} GROUP BY person_id)
        GROUP BY n_maisons ORDER BY n_maisons
        """
    )
    persons = breadth.get_column("persons").sum()  # every person has at least one maison
    overlap = engine.to_polars(
        f"""
        SELECT a.maison AS a, b.maison AS b, count(*) AS persons
        FROM {pm} a JOIN {pm} b ON a.person_id = b.person_id AND a.maison < b.maison
        GROUP BY a.maison, b.maison
        """
    )
    maisons = sorted(engine.to_polars(f"SELECT DISTINCT maison FROM {pm}")["maison"])
    engine.drop(pm)
    counts = {f"{a}|{b}": n for a, b, n in overlap.iter_rows()}
    pairwise: dict[str, int | None] = {}
    for i, a in enumerate(maisons):
        for b in maisons[i + 1 :]:
            n = counts.get(f"{a}|{b}", 0)
            pairwise[f"{a}|{b}"] = n if n >= k_aggregate else None
    ignored, across = _figures_of(
        engine, GUARDED_TOKENS, "count(*), count(*) FILTER (WHERE maisons > 1)"
    )
    split_components, split_records = _figures_of(
        engine, SPLIT_COMPONENTS, "count(*), coalesce(sum(records), 0)"
    )
    return {
        "records": int(records),
        "persons": int(persons),
        "persons_by_maisons": {str(m): int(n) for m, n in breadth.iter_rows()},
        "pairwise_overlap": pairwise,
        "ignored_tokens": int(ignored),
        "ignored_tokens_shared_across_maisons": int(across),
        "split_components": int(split_components),
        "split_records": int(split_records),
    }


def _figures_of(engine: Engine, table: str, figures: str) -> tuple:
    """Two counts over a resolution table, zeros when this run did not make it."""
    if not engine.table_exists(table):
        return (0, 0)
    return engine.to_polars(f"SELECT {figures} FROM {table}").row(0)
