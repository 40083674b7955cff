"""First use of a credential: opened once, under its own lock, never behind another's."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from core.secrets_fixtures import sample

from bucketvault.errors import Unimplemented
from bucketvault.models import (
    CheckResult,
    Credential,
    ListPage,
    ListRequest,
    Mount,
    Preparation,
    RegistrationContext,
    SignOptions,
)
from bucketvault.providers.base import SESSION_EXPIRY, SignedBatch
from bucketvault.providers.gcs.kinds import KINDS
from bucketvault.providers.kinds import ParsedSecret
from bucketvault.testing.server import start_server


class _Signer:
    valid_until: datetime | None = None
    limit_reason = SESSION_EXPIRY

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        return SignedBatch([f"https://signed.example/{k}" for k in keys])


class _Handle:
    def signer(self, mount: Mount, options: SignOptions) -> _Signer:
        return _Signer()

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        raise Unimplemented("not here", reason="PROVIDER_UNAVAILABLE")

    def check(self, mount: Mount) -> CheckResult:
        raise Unimplemented("not here", reason="PROVIDER_UNAVAILABLE")

    def close(self) -> None:
        pass


class GatedProvider:
    """The GCS kinds with an open() that waits for a gate when the credential is 'slow'
    (a KMS unwrap or a token endpoint that takes its time)."""

    name = "gcs"
    kinds = KINDS
    max_url_seconds = 604800

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.opens: list[str] = []
        self._lock = threading.Lock()

    def prepare(self, context: RegistrationContext, secret: ParsedSecret) -> Preparation:
        return Preparation()

    def open(self, credential: Credential, secret: ParsedSecret) -> _Handle:
        with self._lock:
            self.opens.append(credential.display_name)
        if credential.display_name == "slow":
            self.entered.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return _Handle()

    def warnings(self, credential: Credential) -> tuple[str, ...]:
        return ()


def test_a_slow_first_open_blocks_only_its_own_credential(tmp_path: Path) -> None:
    provider = GatedProvider()
    with start_server(tmp_path, providers=[provider]) as srv:
        c = srv.client()
        mounts = {}
        for name in ("slow", "fast"):
            cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"), display_name=name)
            mounts[name] = c.create_mount(
                "acme", name=name, bucket="b", credential_id=cred.credential_id
            ).mount_id
        slow_urls: list[str] = []

        def sign_slow() -> None:
            slow_urls.append(c.sign_url("acme", mounts["slow"], "a.jpg").url)

        # Eight concurrent first uses of the slow credential: one open, all wait on it.
        waiting = [threading.Thread(target=sign_slow) for _ in range(8)]
        for t in waiting:
            t.start()
        assert provider.entered.wait(30)
        # Meanwhile another credential opens and signs: it does not queue behind "slow".
        assert c.sign_url("acme", mounts["fast"], "b.jpg").url == "https://signed.example/b.jpg"
        assert all(t.is_alive() for t in waiting)
        provider.gate.set()
        for t in waiting:
            t.join(30)
        assert slow_urls == ["https://signed.example/a.jpg"] * 8
        assert sorted(provider.opens) == ["fast", "slow"]
