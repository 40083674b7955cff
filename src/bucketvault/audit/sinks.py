"""Secondary audit sinks (a SIEM feed). The store is the system of record."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from bucketvault.store.base import AuditRow


def record_dict(row: AuditRow) -> dict[str, Any]:
    """A row as plain JSON values: its chain position and every field of its event."""
    e = row.event
    return {
        "writer_id": row.writer_id,
        "seq": row.seq,
        "v": row.v,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        **{f.name: getattr(e, f.name) for f in dataclasses.fields(e) if f.name != "detail_json"},
        "time": e.time.isoformat(),
        "expires_at": None if e.expires_at is None else e.expires_at.isoformat(),
        "keys": list(e.keys),
        "detail": e.detail,
    }


class AuditSink(Protocol):
    def emit(self, rows: Sequence[AuditRow]) -> None:
        """Deliver committed rows; may raise (the log counts and reports failures)."""
        ...


class JsonLinesSink:
    """Appends one JSON object per row to a file (0600) a log shipper tails."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def emit(self, rows: Sequence[AuditRow]) -> None:
        lines = "".join(json.dumps(record_dict(r), sort_keys=True) + "\n" for r in rows)
        with self._lock:
            self._file.write(lines)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


__all__ = ["AuditSink", "JsonLinesSink", "record_dict"]
