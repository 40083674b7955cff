"""Two replicas on one PostgreSQL: what one writes, the other serves on its next request.

No replica caches a mount or a credential's state: every SignURL / ListPrefix reads the
mount and its credential row from the store (app/mounts.py, app/handles.py), and only
the opened handle is cached, keyed by (credential id, record version) and used only
after that read said ACTIVE. So the follow bound is zero: once a RebindMount or a
RevokeCredential has returned on replica A, the next request on replica B sees it. A
handle B opened for a credential revoked elsewhere is closed within HANDLE_SWEEP_PERIOD
(30 s) even if B never serves it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.app.handles import RECENT_SECONDS
from bucketvault.client import BucketVaultClient
from bucketvault.clock import FrozenClock
from bucketvault.service import HANDLE_SWEEP_PERIOD
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.postgres import EmbeddedPostgres
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import vault_pb2

pytestmark = pytest.mark.postgres


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def replicas(
    tmp_path: Path, embedded_pg: EmbeddedPostgres, clock: FrozenClock
) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two in-process servers on one database and one KEK, each its own audit writer.

    One FrozenClock for both, so that the same request signs to the same URL on either.
    """
    store = embedded_pg.create_database()
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                start_server(
                    tmp_path,
                    env={
                        "BUCKETVAULT_STORE": store,
                        "BUCKETVAULT_KEK": f"file://{tmp_path / 'kek.key'}",
                        "BUCKETVAULT_AUDIT_WRITER_ID": f"replica-{name}",
                    },
                    clock=clock,
                    providers=local_providers(),
                )
            )
            for name in ("a", "b")
        ]
        yield servers[0], servers[1]


def _mount(c: BucketVaultClient) -> tuple[str, str, str]:
    first = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), display_name="one")
    second = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), display_name="two")
    mount = c.create_mount("acme", name="photos", bucket="b", credential_id=first.credential_id)
    return mount.mount_id, first.credential_id, second.credential_id


# How long another replica may act on what it read before a rebind or revoke: the
# signing path's reuse of its store reads (app/handles.py RECENT_SECONDS), plus slack
# for a loaded test machine.
FOLLOW_BOUND = RECENT_SECONDS + 1.0


def _within(bound: float, done: Callable[[], bool]) -> float:
    """Seconds until done() first holds, polled; a little over bound if it never does."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > bound:
            break
        time.sleep(0.05)
    return time.monotonic() - start


def test_the_second_replica_follows_rebind_and_revoke_within_the_bound(
    replicas: tuple[RunningServer, RunningServer], clock: FrozenClock
) -> None:
    a, b = replicas[0].client(), replicas[1].client()
    mount_id, first, second = _mount(a)

    # Registered through A, listed and signed through B.
    assert [m.mount_id for m in b.list_mounts("acme")] == [mount_id]
    assert {c.credential_id for c in b.list_credentials("acme")} == {first, second}
    before = b.sign_url("acme", mount_id, "a.jpg").url
    assert before == a.sign_url("acme", mount_id, "a.jpg").url
    assert [e.key for p in b.list_prefix("acme", mount_id) for e in p.entries] == ["a.jpg"]

    # Rebind through A: B signs with the other credential within the stated bound (its
    # signing path reuses a read of the mount for RECENT_SECONDS; GetMount reads afresh).
    rebound = a.rebind_mount("acme", mount_id, second, expected_version=1)
    assert b.get_mount("acme", mount_id).version == rebound.version == 2
    followed = _within(FOLLOW_BOUND, lambda: b.sign_url("acme", mount_id, "a.jpg").url != before)
    assert followed <= FOLLOW_BOUND
    assert b.sign_url("acme", mount_id, "a.jpg").url == a.sign_url("acme", mount_id, "a.jpg").url

    # B still holds the first credential's handle; revoked through A, B closes it on its
    # next sweep (HANDLE_SWEEP_PERIOD on the service's clock), though no request asks.
    service_b = replicas[1].service
    assert service_b is not None
    assert {first, second} <= service_b.app.handles.open_credentials()
    a.revoke_credential("acme", first, "replica test")
    clock.advance(HANDLE_SWEEP_PERIOD)
    deadline = time.monotonic() + 10
    while first in service_b.app.handles.open_credentials() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service_b.app.handles.open_credentials() == {second}

    # Revoke through A: B refuses within the bound, though it holds a handle.
    a.revoke_credential("acme", second, "replica test")

    def refused() -> bool:
        try:
            b.sign_url("acme", mount_id, "a.jpg")
        except errors.FailedPrecondition as exc:
            assert exc.reason == "CREDENTIAL_REVOKED"
            return True
        return False

    assert _within(FOLLOW_BOUND, refused) <= FOLLOW_BOUND
    with pytest.raises(errors.FailedPrecondition):
        list(b.list_prefix("acme", mount_id))
    assert b.get_credential("acme", second).state == vault_pb2.CREDENTIAL_STATE_REVOKED

    # Both audit chains verify, each replica its own writer.
    for c in (a, b):
        verdict = c.verify_audit(full=True)
        assert verdict.ok, verdict.detail


def _race(
    clients: tuple[BucketVaultClient, BucketVaultClient], mount_id: str, target: str, version: int
) -> list[object]:
    """Both clients send RebindMount(expected_version=version) at the same moment."""
    barrier = threading.Barrier(len(clients))
    outcomes: list[object] = [None] * len(clients)

    def rebind(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = clients[i].rebind_mount("acme", mount_id, target, version).version
        except errors.BucketVaultError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=rebind, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_racing_rebinds_on_both_replicas_exactly_one_wins(
    replicas: tuple[RunningServer, RunningServer],
) -> None:
    a, b = replicas[0].client(), replicas[1].client()
    mount_id, first, second = _mount(a)
    for version in range(1, 7):
        target = second if version % 2 else first
        outcomes = _race((a, b), mount_id, target, version)
        wins = [o for o in outcomes if o == version + 1]
        losses = [o for o in outcomes if isinstance(o, errors.Aborted)]
        assert len(wins) == 1 and len(losses) == 1, outcomes
        assert losses[0].reason == "VERSION_MISMATCH"
        for c in (a, b):
            mount = c.get_mount("acme", mount_id)
            assert (mount.version, mount.credential_id) == (version + 1, target)
