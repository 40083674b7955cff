"""Secondary audit sinks (a SIEM feed). The store is the system of record."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from bucketvault.store.base import AuditRow


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
        lines = "".join(
            json.dumps(
                {
                    "writer_id": r.writer_id,
                    "seq": r.seq,
                    "time": r.time.isoformat(),
                    "principal": r.principal,
                    "tenant": r.tenant,
                    "action": r.action,
                    "resource": r.resource,
                    "outcome": r.outcome,
                    "request_id": r.request_id,
                    "detail": json.loads(r.detail_json or "{}"),
                    "prev_hash": r.prev_hash,
                    "hash": r.hash,
                },
                sort_keys=True,
            )
            + "\n"
            for r in rows
        )
        with self._lock:
            self._file.write(lines)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


__all__ = ["AuditSink", "JsonLinesSink"]
