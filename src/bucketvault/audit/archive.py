"""The audit archive format (JSON lines), written by retention and by ExportAudit, and its
offline verification.

Lines, in this order::

    {"type": "key", "key_id": ..., "public_key_pem": ...}      the key that signed them
    {"type": "checkpoint", "writer_id": ..., "seq": ..., ...}   every checkpoint first
    {"type": "record", "writer_id": ..., "seq": ..., ...}       the rows, by writer and seq

Checkpoints come before the rows so that cutting lines off the end of a file leaves a
checkpoint pointing past its last row. A record line carries every field of the stored
row, so that row_hash() recomputes from the line alone.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from bucketvault.audit.event import AuditEvent
from bucketvault.audit.signing import TrustedKeys, load_public_pem
from bucketvault.audit.verify import GENESIS_START, Start, verify_writer
from bucketvault.store.base import AuditCheckpoint, AuditRow


class ArchiveError(ValueError):
    """A line that is not part of the format (offline use: no gRPC status to map to)."""


def _dump(kind: str, record: Any) -> str:
    body: dict[str, Any] = {"type": kind}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, datetime):
            value = value.isoformat(timespec="microseconds")
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        body[f.name] = value
    return json.dumps(body, sort_keys=True, ensure_ascii=True)


def key_line(key_id: str, public_key_pem: str) -> str:
    return json.dumps(
        {"type": "key", "key_id": key_id, "public_key_pem": public_key_pem}, sort_keys=True
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, tuple):
        return list(value)
    return value


def record_line(row: AuditRow) -> str:
    """A row with its event verbatim (detail_json as stored): re-hashable offline."""
    body: dict[str, Any] = {
        "type": "record",
        "writer_id": row.writer_id,
        "seq": row.seq,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "v": row.v,
        "event": {f.name: _plain(getattr(row.event, f.name)) for f in fields(row.event)},
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=True)


def checkpoint_line(checkpoint: AuditCheckpoint) -> str:
    return _dump("checkpoint", checkpoint)


def _row(body: dict[str, Any]) -> AuditRow:
    event = dict(body["event"])
    event["time"] = datetime.fromisoformat(event["time"])
    if event.get("expires_at") is not None:
        event["expires_at"] = datetime.fromisoformat(event["expires_at"])
    event["keys"] = tuple(event.get("keys", ()))
    return AuditRow(
        writer_id=body["writer_id"],
        seq=body["seq"],
        prev_hash=body["prev_hash"],
        hash=body["hash"],
        event=AuditEvent(**event),
        v=body["v"],
    )


def _checkpoint(body: dict[str, Any]) -> AuditCheckpoint:
    return AuditCheckpoint(
        **{
            **body,
            "time": datetime.fromisoformat(body["time"]),
            "signature": base64.b64decode(body["signature"], validate=True),
        }
    )


@dataclass(frozen=True)
class Archive:
    rows: dict[str, list[AuditRow]]
    checkpoints: dict[str, list[AuditCheckpoint]]
    keys: TrustedKeys


def read_archive(lines: Iterable[str]) -> Archive:
    """Parse a file's lines; a malformed line raises ArchiveError naming its number."""
    rows: dict[str, list[AuditRow]] = defaultdict(list)
    checkpoints: dict[str, list[AuditCheckpoint]] = defaultdict(list)
    keys = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
            kind = body.pop("type")
            if kind == "record":
                row = _row(body)
                rows[row.writer_id].append(row)
            elif kind == "checkpoint":
                cp = _checkpoint(body)
                checkpoints[cp.writer_id].append(cp)
            elif kind == "key":
                keys.append(load_public_pem(body["public_key_pem"]))
            else:
                raise ArchiveError(f"line {number}: unknown type {kind!r}")
        except ArchiveError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ArchiveError(f"line {number}: not an audit archive line") from exc
    return Archive(dict(rows), dict(checkpoints), TrustedKeys.of(*keys))


@dataclass(frozen=True)
class FileVerdict:
    ok: bool
    records_checked: int
    writers: int
    checkpoints_checked: int
    records_after_checkpoint: int
    # Writers whose first record in the file follows a row the file does not hold and
    # no checkpoint in the file anchors: an export's window can start mid-chain.
    unanchored: tuple[str, ...]
    key_pinned: bool
    first_bad_record: str = ""
    detail: str = ""


def verify_archive(archive: Archive, pinned: TrustedKeys | None = None) -> FileVerdict:
    """Chains and checkpoint signatures of a file, against the pinned key if given (else
    against the key the file names, which only proves the file agrees with itself)."""
    keys = pinned if pinned is not None else archive.keys
    checked = cps = after = 0
    unanchored: list[str] = []
    writers = sorted({*archive.rows, *archive.checkpoints})
    for writer in writers:
        rows = sorted(archive.rows.get(writer, []), key=lambda r: r.seq)
        checkpoints = sorted(archive.checkpoints.get(writer, []), key=lambda c: c.seq)
        start = GENESIS_START
        if rows and rows[0].seq > 1:
            before = rows[0].seq - 1
            anchors = [c for c in checkpoints if c.seq == before]
            start = Start(before, anchors[0].hash if anchors else rows[0].prev_hash)
            if not anchors:
                unanchored.append(writer)
        elif not rows and checkpoints:
            start = Start(checkpoints[0].seq, checkpoints[0].hash)
        verdict = verify_writer(
            writer, start, rows, [c for c in checkpoints if c.seq >= start.seq], keys
        )
        checked += verdict.checked
        cps += verdict.checkpoints_checked
        after += verdict.after_checkpoint
        if not verdict.ok:
            return FileVerdict(
                False,
                checked,
                len(writers),
                cps,
                after,
                tuple(unanchored),
                pinned is not None,
                verdict.first_bad_record,
                verdict.detail,
            )
    return FileVerdict(
        True, checked, len(writers), cps, after, tuple(unanchored), pinned is not None
    )


def lines_of(
    key_id: str,
    public_key_pem: str,
    checkpoints: Iterable[AuditCheckpoint],
    rows: Iterable[AuditRow],
) -> Iterator[str]:
    """A whole archive, line by line (no newlines), in the format's order."""
    yield key_line(key_id, public_key_pem)
    for cp in checkpoints:
        yield checkpoint_line(cp)
    for row in rows:
        yield record_line(row)


__all__ = [
    "Archive",
    "ArchiveError",
    "FileVerdict",
    "checkpoint_line",
    "key_line",
    "lines_of",
    "read_archive",
    "record_line",
    "verify_archive",
]
