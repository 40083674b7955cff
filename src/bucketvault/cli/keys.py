"""`bucketvault keys ...`: KEK and registration key rotation, run against the store.

These commands open the store the server uses (BUCKETVAULT_STORE, or the data
directory's SQLite file) with the server's KEK settings, and call no server: every
replica reads envelopes and service keys from the store on each use, so the running
service keeps serving and picks the changes up by itself. Runbook: README, "Key
rotation and replicas".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from typing import Any

from bucketvault.app.kekrotation import RewrapProgress, kek_status, rewrap_all
from bucketvault.app.servicekeys import ServiceKeys
from bucketvault.clock import SystemClock
from bucketvault.config import Config
from bucketvault.crypto.envelope import Envelope
from bucketvault.crypto.keys import KeyRing, key_provider_from_uri
from bucketvault.store import open_store
from bucketvault.store.base import Store

STATUS_COLS = ("kek", "configured", "credentials", "service_keys", "note")


def _config(args: argparse.Namespace) -> Config:
    return Config.from_env(os.environ, data_dir=args.data_dir or "")


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def status_rows(config: Config, store: Store) -> list[dict[str, Any]]:
    """Records per KEK, and what the operator may do about each KEK."""
    # create=False: asking for the status must never mint a KEK file.
    current = key_provider_from_uri(config.kek_uri, config.env, create=False)
    previous = [
        key_provider_from_uri(u, config.env, create=False).kek_id for u in config.previous_kek_uris
    ]
    counts = kek_status(store, Envelope(KeyRing(current)))
    ids = [current.kek_id, *previous, *sorted(k for k in counts if k != current.kek_id)]
    rows: list[dict[str, Any]] = []
    for kek_id in dict.fromkeys(ids):
        count = counts.get(kek_id)
        creds, keys = (count.credentials, count.service_keys) if count else (0, 0)
        if kek_id == current.kek_id:
            configured, note = "current", "new records are wrapped under it"
        elif kek_id in previous:
            configured = "previous"
            note = (
                "unused: may be removed from BUCKETVAULT_KEK_PREVIOUS"
                if creds + keys == 0
                else "still in use: run `bucketvault keys rotate-kek`"
            )
        else:
            configured, note = "no", "NOT CONFIGURED: these records cannot be read"
        rows.append(
            {
                "kek": kek_id,
                "configured": configured,
                "credentials": creds,
                "service_keys": keys,
                "note": note,
            }
        )
    return rows


def keys_status(args: argparse.Namespace) -> int:
    """Print records per KEK; exit 1 if some records are under a KEK not configured."""
    config = _config(args)
    # A missing KEK file stops here, before a store is opened (or created).
    key_provider_from_uri(config.kek_uri, config.env, create=False)
    store = open_store(config.store_url)
    try:
        rows = status_rows(config, store)
    finally:
        store.close()
    print(json.dumps(rows, indent=2) if args.json else _table(rows, STATUS_COLS))
    return 1 if any(r["configured"] == "no" for r in rows) else 0


def _report(progress: RewrapProgress) -> None:
    print(
        f"bucketvault: {progress.seen}/{progress.total} looked at: {progress.rewrapped} "
        f"re-wrapped, {progress.already} already under the new KEK, {progress.gone} revoked "
        f"meanwhile, {len(progress.failed)} failed",
        file=sys.stderr,
        flush=True,
    )


def keys_rotate_kek(args: argparse.Namespace) -> int:
    """Re-wrap every data key under --to; the KEKs configured now unwrap the old ones."""
    config = _config(args)
    target = key_provider_from_uri(args.to, config.env)
    older = [
        key_provider_from_uri(u, config.env, create=False)
        for u in (config.kek_uri, *config.previous_kek_uris)
        if u != args.to
    ]
    envelope = Envelope(KeyRing(target, older))
    store = open_store(config.store_url)
    try:
        result = rewrap_all(
            store, envelope, batch=args.batch, pause_seconds=args.pause, progress=_report
        )
        rows = status_rows(config, store) if config.kek_uri == args.to else []
    finally:
        store.close()
    if args.json:
        print(json.dumps({**vars(result), "seen": result.seen}, indent=2))
    else:
        print(f"re-wrapped {result.rewrapped} of {result.total} under {result.target}")
        if rows:
            print(_table(rows, STATUS_COLS))
    for record_id in result.failed:
        print(f"bucketvault: could not re-wrap {record_id}", file=sys.stderr)
    return 1 if result.failed else 0


def keys_rotate_registration_key(args: argparse.Namespace) -> int:
    """A new registration key per suite; the previous ones stay accepted for the overlap."""
    config = _config(args)
    ring = KeyRing(
        key_provider_from_uri(config.kek_uri, config.env, create=False),
        [key_provider_from_uri(u, config.env, create=False) for u in config.previous_kek_uris],
    )
    store = open_store(config.store_url)
    try:
        rotated = ServiceKeys(store, Envelope(ring), SystemClock()).rotate_registration_keys(
            timedelta(days=args.overlap_days)
        )
    finally:
        store.close()
    rows = [
        {
            "suite": r.suite,
            "key_id": r.new_key_id,
            "previous_key_id": r.previous_key_id,
            "previous_accepted_until": (
                r.previous_accepted_until.isoformat() if r.previous_accepted_until else ""
            ),
        }
        for r in rotated
    ]
    columns = ("suite", "key_id", "previous_key_id", "previous_accepted_until")
    print(json.dumps(rows, indent=2) if args.json else _table(rows, columns))
    return 0


def _service_keys(args: argparse.Namespace) -> tuple[ServiceKeys, Any]:
    config = _config(args)
    ring = KeyRing(
        key_provider_from_uri(config.kek_uri, config.env, create=False),
        [key_provider_from_uri(u, config.env, create=False) for u in config.previous_kek_uris],
    )
    store = open_store(config.store_url)
    return ServiceKeys(store, Envelope(ring), SystemClock()), store


def keys_rotate_link_key(args: argparse.Namespace) -> int:
    """A new link key; links signed with the previous one keep opening until it is retired."""
    service_keys, store = _service_keys(args)
    try:
        new_id, previous = service_keys.rotate_link_key()
    finally:
        store.close()
    row = {"key_id": new_id, "previous_key_id": previous}
    print(json.dumps(row, indent=2) if args.json else _table([row], tuple(row)))
    return 0


def keys_retire_link_key(args: argparse.Namespace) -> int:
    """Retire a link key: every link signed with it answers 404 (after a restart)."""
    service_keys, store = _service_keys(args)
    try:
        service_keys.retire_link_key(args.key_id)
    finally:
        store.close()
    print(json.dumps({"retired": args.key_id}) if args.json else f"retired {args.key_id}")
    return 0


def add_parser(sub: Any) -> None:
    """The `keys` command group (sub: the top-level subparsers)."""
    k = sub.add_parser(
        "keys", help="KEK and registration key rotation (offline, on the store)"
    ).add_subparsers(dest="sub", required=True)
    st = k.add_parser("status", help="records per KEK; says when an old KEK may be removed")
    rk = k.add_parser("rotate-kek", help="re-wrap every data key under a new KEK")
    rk.add_argument("--to", required=True, help="the new KEK URI (file:///... or aws-kms://...)")
    rk.add_argument("--batch", type=int, default=100, help="report progress every N records")
    rk.add_argument("--pause", type=float, default=0.0, help="seconds to sleep between batches")
    rr = k.add_parser(
        "rotate-registration-key", help="a new HPKE registration key; the old one overlaps"
    )
    rr.add_argument(
        "--overlap-days",
        type=float,
        default=7.0,
        help="how long blobs sealed to the previous key are still accepted (default 7)",
    )
    rl = k.add_parser("rotate-link-key", help="a new link MAC key; old links keep opening")
    tl = k.add_parser("retire-link-key", help="links signed with this key answer 404")
    tl.add_argument("key_id")
    for x in (st, rk, rr, rl, tl):
        x.add_argument("--data-dir")
        x.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


OFFLINE = {
    ("keys", "status"): keys_status,
    ("keys", "rotate-kek"): keys_rotate_kek,
    ("keys", "rotate-registration-key"): keys_rotate_registration_key,
    ("keys", "rotate-link-key"): keys_rotate_link_key,
    ("keys", "retire-link-key"): keys_retire_link_key,
}

__all__ = ["OFFLINE", "add_parser", "status_rows"]
