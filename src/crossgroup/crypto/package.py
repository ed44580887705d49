"""Sealed packages: everything that crosses between parties (DESIGN §3, docs/package-format.md).

One `.cgpkg` file: a minimal binary framing naming the sender, a canonical-JSON header (the
readable manifest, the HPKE-wrapped content key and the stream parameters), the sender's
Ed25519 signature over framing and header, then the payload: the Parquet tables streamed
through STREAM/AES-256-GCM in 1 MiB chunks. `verify_package` checks framing, version,
sender, signature, recipient, kind, replay and payload length before any decryption.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crossgroup.crypto import _primitives
from crossgroup.crypto._envelope import (
    CHUNK_SIZE,
    FORMAT_VERSION,
    KINDS,
    Header,
    Manifest,
    TableReader,
    build_header,
    hpke_suite,
    parse_header,
    payload_key,
    read_framing,
    suite_name,
)
from crossgroup.crypto.keys import PartyKeys
from crossgroup.crypto.ledger import LEDGER, accepted_ids, accepted_records
from crossgroup.errors import InputError, SecurityError
from crossgroup.io import BackgroundWriter, require_readable_file, staged_output

if TYPE_CHECKING:
    from crossgroup.commit import Transaction

__all__ = [
    "CHUNK_SIZE",
    "FORMAT_VERSION",
    "KINDS",
    "Manifest",
    "OpenedPackage",
    "accept_packages",
    "claimed_sender",
    "open_package",
    "require_one_matching_key",
    "seal_package",
    "suite_name",
    "verify_package",
]

FILE_SUFFIX = ".cgpkg"
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DIRECTIONS = {"export": ("maison", "processor"), "erasure": ("maison", "processor"),
               "return": ("processor", "maison")}  # fmt: skip


def _check_direction(kind: str, sender_role: str, recipient_role: str) -> None:
    if _DIRECTIONS[kind] != (sender_role, recipient_role):
        raise SecurityError(
            f"wrong kind: a {kind} package goes from a {_DIRECTIONS[kind][0]} "
            f"to a {_DIRECTIONS[kind][1]}, not from a {sender_role} to a {recipient_role}"
        )


# ---------------------------------------------------------------- seal


def seal_package(
    out_dir: Path,
    *,
    kind: str,
    sender: PartyKeys,
    recipient: str,
    tables: dict[str, Path],
    batch_id: str,
    as_of: dt.date,
    matching_key_id: str,
    consent_snapshot: dt.datetime | None = None,
    summary: dict | None = None,
    now: dt.datetime | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[Path, Manifest]:
    """Sign and encrypt Parquet `tables` for `recipient`; write one package atomically.

    Example: seal_package(out, kind="export", sender=keys, recipient="processor",
    tables={"identities": p1, "activity": p2}, batch_id="2026-11", as_of=date(2026, 11, 1),
    matching_key_id=keys.matching.key_id)
    """
    if kind not in KINDS:
        raise InputError(f"package kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not _BATCH_ID.match(batch_id):
        raise InputError("batch id must be 1-64 letters, digits, '.', '_' or '-'")
    if not tables:
        raise InputError("a package needs at least one table")
    for name, path in tables.items():
        if not _TABLE_NAME.match(name):
            raise InputError(f"table name {name!r} must be lower-case letters, digits or '_'")
        if not Path(path).is_file():
            raise InputError(f"table {name}: file not found: {path}")
    target = sender.registry.party(recipient)
    _check_direction(kind, sender.role, target.role)
    header, content_key = build_header(
        kind=kind, sender=sender, recipient=target, tables={n: Path(p) for n, p in tables.items()},
        batch_id=batch_id, as_of=as_of, matching_key_id=matching_key_id,
        consent_snapshot=consent_snapshot, summary=summary or {}, now=now, chunk_size=chunk_size,
    )  # fmt: skip
    manifest = header.manifest
    name = f"{kind}-{sender.party_id}-to-{recipient}-{batch_id}{FILE_SUFFIX}"
    with staged_output(out_dir) as staging, open(staging / name, "wb") as sink:
        sink.write(header.signed_bytes)
        sink.write(header.signature)
        reader = TableReader(
            [(Path(tables[n]), manifest.tables[n]["bytes"]) for n in sorted(manifest.tables)]
        )
        key = payload_key(content_key, manifest.package_id)
        try:
            with BackgroundWriter(sink) as writer:
                _primitives.stream_encrypt(
                    key, header.aad, reader, header.plaintext_bytes, writer, header.chunk_size
                )
        except _primitives.StreamError:
            raise InputError("a table file changed while it was being sealed; retry") from None
        reader.close()
    return Path(out_dir) / name, manifest


# ---------------------------------------------------------------- verify and open


def _verify(path: Path, keys: PartyKeys, kind: str | None, check_replay: bool = True) -> Header:
    path = require_readable_file(path, "package")  # a FIFO would block open() for ever
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            framing = read_framing(f, path)
    except FileNotFoundError:
        raise InputError(f"package file not found: {path}") from None
    except OSError as e:
        raise InputError(f"cannot read package file {path}: {e.strerror}") from None
    try:
        sender = keys.registry.party(framing.sender)
    except SecurityError:
        raise SecurityError(f"{path.name}: unknown sender {framing.sender!r}") from None
    try:
        sender.verify_key().verify(framing.signature, framing.signature_input)
    except Exception:
        raise SecurityError(
            f"{path.name}: bad signature: not signed by the registered key of {sender.id}"
        ) from None
    header = parse_header(framing, path)  # parsed only now that its bytes are authentic
    manifest = header.manifest
    if manifest.recipient != keys.party_id:
        raise SecurityError(
            f"{path.name}: wrong recipient: package is for {manifest.recipient}, "
            f"not {keys.party_id}"
        )
    if kind is not None and manifest.kind != kind:
        raise SecurityError(f"{path.name}: wrong kind: expected {kind}, got {manifest.kind}")
    _check_direction(manifest.kind, sender.role, keys.role)
    if check_replay and manifest.package_id in accepted_ids(keys.directory):
        raise SecurityError(
            f"{path.name}: replayed package: {manifest.package_id} was already accepted "
            f"by {keys.party_id}"
        )
    expected = header.payload_offset + _primitives.stream_ciphertext_len(
        header.plaintext_bytes, header.chunk_size
    )
    if size < expected:
        raise SecurityError(f"{path.name}: truncated payload ({expected - size} bytes missing)")
    if size > expected:
        raise SecurityError(f"{path.name}: extended payload ({size - expected} unexpected bytes)")
    return header


def verify_package(
    path: Path,
    keys: PartyKeys,
    *,
    kind: str | None = None,
    matching_key_id: str | None = None,
    check_replay: bool = True,
) -> Manifest:
    """Check a package against the registry and the ledger without decrypting anything.

    Refuses (SecurityError, exit 3): bad framing, unsupported version, unknown sender, bad
    signature, wrong recipient, wrong kind, replay, truncated or extended payload, and a
    matching-key id other than `matching_key_id` when one is given. `check_replay=False` is
    for reading without acting (an auditor's `crossgroup open`, evaluation): the package is
    still fully authenticated, only its presence in the ledger is not an error.
    """
    manifest = _verify(path, keys, kind, check_replay).manifest
    if matching_key_id is not None and manifest.matching_key_id != matching_key_id:
        raise SecurityError(
            f"{Path(path).name}: matching-key mismatch: package uses "
            f"{manifest.matching_key_id}, expected {matching_key_id}"
        )
    return manifest


def claimed_sender(path: Path) -> str | None:
    """The sender a package's framing names, unverified (None when the framing cannot be
    read): only to tell which party a refused package claims to come from, never to trust it.
    """
    try:
        with open(path, "rb") as f:
            return read_framing(f, Path(path)).sender
    except (SecurityError, OSError):
        return None


@dataclass(frozen=True)
class OpenedPackage:
    manifest: Manifest
    tables: dict[str, Path] = field(default_factory=dict)


def open_package(
    path: Path,
    keys: PartyKeys,
    workdir: Path,
    *,
    kind: str | None = None,
    check_replay: bool = True,
) -> OpenedPackage:
    """Verify, unwrap the content key, and stream-decrypt the tables into `workdir`.

    `workdir` should be a private (0700) directory. Any failure removes what was written.
    Does not record the package in the ledger: `accept_packages` adds it to the command's
    commit.
    """
    path, workdir = Path(path), Path(workdir)
    header = _verify(path, keys, kind, check_replay)
    manifest = header.manifest
    try:
        content_key = hpke_suite(header.kem).decrypt(
            header.wrapped_key, keys.decryption_key, info=header.hpke_info
        )
    except Exception:
        raise SecurityError(
            f"{path.name}: cannot unwrap the content key with {keys.party_id}'s key"
        ) from None
    outputs = {name: workdir / f"{name}.parquet" for name in manifest.tables}
    try:
        _decrypt_into(path, header, payload_key(content_key, manifest.package_id), outputs)
    except BaseException:
        for out in outputs.values():
            out.unlink(missing_ok=True)
        raise
    return OpenedPackage(manifest, outputs)


def _decrypt_into(path: Path, header: Header, key: bytes, outputs: dict[str, Path]) -> None:
    manifest = header.manifest
    plan = [(name, int(manifest.tables[name]["bytes"])) for name in sorted(manifest.tables)]
    with open(path, "rb") as src:
        src.seek(header.payload_offset)
        chunks = _primitives.stream_decrypt(
            key, header.aad, src, header.plaintext_bytes, header.chunk_size
        )
        buf, pos = memoryview(b""), 0
        try:
            for name, size in plan:
                digest = hashlib.sha256()
                with (
                    open(outputs[name], "wb") as out,
                    BackgroundWriter(out) as writer,
                ):
                    left = size
                    while left:
                        if pos == len(buf):
                            buf, pos = memoryview(next(chunks)), 0
                        piece = buf[pos : pos + left]
                        pos += len(piece)
                        left -= len(piece)
                        writer.write(piece)  # the disk write overlaps the hash and decryption
                        digest.update(piece)
                if digest.hexdigest() != manifest.tables[name]["sha256"]:
                    raise SecurityError(f"{path.name}: table {name} does not match its digest")
            for _ in chunks:  # drain: authenticates the final chunk and detects extension
                pass
        except _primitives.StreamError as e:
            raise _stream_refusal(path, e) from None


def _stream_refusal(path: Path, e: _primitives.StreamError) -> SecurityError:
    if e.reason == "truncated":
        return SecurityError(f"{path.name}: truncated payload at chunk {e.index}")
    if e.reason == "extended":
        return SecurityError(f"{path.name}: extended payload after the final chunk")
    return SecurityError(f"{path.name}: payload chunk {e.index} was modified or reordered")


# ---------------------------------------------------------------- ledger and batches


def accept_packages(
    tx: Transaction, keys: PartyKeys, manifests: list[Manifest], *, now: dt.datetime | None = None
) -> None:
    """Add the recipient's ledger lines for these packages to the command's commit, so they
    are written with its outputs; refuses a replay (the party's lock is held throughout)."""
    for m in manifests:
        if m.recipient != keys.party_id:
            raise SecurityError(f"wrong recipient: package {m.package_id} is for {m.recipient}")
    tx.append(Path(keys.directory) / LEDGER, accepted_records(keys.directory, manifests, now=now))


def require_one_matching_key(manifests: list[Manifest]) -> str:
    """The single matching-key id of a batch; a batch mixing epochs is refused."""
    ids = sorted({m.matching_key_id for m in manifests})
    if not ids:
        raise InputError("an empty batch has no matching-key id")
    if len(ids) > 1:
        raise SecurityError(f"matching-key mismatch: the batch mixes keys {', '.join(ids)}")
    return ids[0]
