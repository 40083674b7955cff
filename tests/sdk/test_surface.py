"""The async client's public surface is the sync client's, and both are pinned by a
checked-in list (public_api.txt), so that a change to either is deliberate."""

from __future__ import annotations

import inspect
from pathlib import Path

from bucketvault.client import AsyncBucketVaultClient, BucketVaultClient

SNAPSHOT = Path(__file__).with_name("public_api.txt")


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


def _params(sig: inspect.Signature) -> list[tuple[str, object, object, object]]:
    return [(p.name, p.kind, p.default, p.annotation) for p in sig.parameters.values()]


def test_async_methods_match_sync_names_and_parameters() -> None:
    sync, aio = _public(BucketVaultClient), _public(AsyncBucketVaultClient)
    assert set(sync) == set(aio)
    for name in sync:
        assert _params(sync[name]) == _params(aio[name]), name
    # The constructors take the same arguments (the channel type aside).
    init = [p[:3] for p in _params(inspect.signature(BucketVaultClient.__init__))]
    ainit = [p[:3] for p in _params(inspect.signature(AsyncBucketVaultClient.__init__))]
    assert init == ainit


def test_every_async_method_is_a_coroutine_or_async_iterator() -> None:
    for name, member in vars(AsyncBucketVaultClient).items():
        if callable(member) and not name.startswith("_"):
            assert inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member), name


def test_public_api_matches_the_snapshot() -> None:
    lines = [
        f"{name}({', '.join(sig.parameters)})"
        for name, sig in sorted(_public(BucketVaultClient).items())
    ]
    assert SNAPSHOT.read_text().splitlines() == lines, f"update {SNAPSHOT.name} on purpose"
