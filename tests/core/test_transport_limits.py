"""Transport limits through the real server: an oversized message is refused by gRPC
(RESOURCE_EXHAUSTED) and the server keeps serving; an over-long batch is INVALID_ARGUMENT
BATCH_TOO_LARGE; a principal's streams count against its concurrency cap while another
principal's streams are served."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from core.secrets_fixtures import sample
from core.test_limits import TENANT, _data_dir, _mount

from bucketvault import errors
from bucketvault.app.signing import MAX_BATCH_KEYS
from bucketvault.config import Config
from bucketvault.grpc.status import retry_delay
from bucketvault.models import Credential, ListPage, ListRequest, Mount
from bucketvault.providers.base import CloudProvider, CredentialHandle
from bucketvault.providers.kinds import ParsedSecret
from bucketvault.testing.fakes import LocalHandle, LocalProvider, local_providers
from bucketvault.testing.server import start_server
from bucketvault.v1 import signer_pb2

MIB = 1024 * 1024


def test_message_caps_are_configured_and_checked() -> None:
    base = {"BUCKETVAULT_DATA_DIR": "/tmp/bv-unused"}
    default = Config.from_env(base)
    assert (default.grpc_max_receive_bytes, default.grpc_max_send_bytes) == (4 * MIB, 16 * MIB)
    own = Config.from_env(
        {
            **base,
            "BUCKETVAULT_GRPC_MAX_RECEIVE_BYTES": str(MIB),
            "BUCKETVAULT_GRPC_MAX_SEND_BYTES": str(2 * MIB),
        }
    )
    assert (own.grpc_max_receive_bytes, own.grpc_max_send_bytes) == (MIB, 2 * MIB)
    for bad in ("0", "1000", "big", str(1024 * MIB)):
        with pytest.raises(errors.InvalidArgument) as info:
            Config.from_env({**base, "BUCKETVAULT_GRPC_MAX_RECEIVE_BYTES": bad})
        assert info.value.reason == "INVALID_CONFIG"


def test_oversized_request_is_refused_and_the_server_keeps_serving(tmp_path: Path) -> None:
    with start_server(tmp_path) as srv:
        c = srv.client()
        cred = c.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
        mount_id = c.create_mount(
            TENANT, name="m", bucket="b", credential_id=cred.credential_id
        ).mount_id
        # Just over the default 4 MiB receive cap: gRPC refuses it before any servicer.
        huge = "k" * (4 * MIB + 1)
        with pytest.raises(grpc.RpcError) as raw:
            c.signer.SignURL(
                signer_pb2.SignURLRequest(tenant=TENANT, mount_id=mount_id, key=huge),
                metadata=(("authorization", f"Bearer {srv.admin_token}"),),
                timeout=30,
            )
        assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The SDK maps the transport's refusal to its error, like the service's own.
        with pytest.raises(errors.ResourceExhausted):
            c.sign_url(TENANT, mount_id, huge)
        # The same connection and the server go on serving.
        for _ in range(3):
            assert c.sign_url(TENANT, mount_id, "a.jpg").url
        assert len(c.sign_urls(TENANT, mount_id, ["a.jpg"] * MAX_BATCH_KEYS)) == MAX_BATCH_KEYS


def test_a_lower_receive_cap_applies(tmp_path: Path) -> None:
    env = {"BUCKETVAULT_GRPC_MAX_RECEIVE_BYTES": str(64 * 1024)}
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        cred = c.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
        mount_id = c.create_mount(
            TENANT, name="m", bucket="b", credential_id=cred.credential_id
        ).mount_id
        keys = [f"{i:04d}-" + "k" * 200 for i in range(400)]  # ~82 KB of keys
        with pytest.raises(errors.ResourceExhausted):
            c.sign_urls(TENANT, mount_id, keys)
        assert len(c.sign_urls(TENANT, mount_id, keys[:100])) == 100


def test_batches_over_the_limit_are_invalid_argument(tmp_path: Path) -> None:
    with start_server(tmp_path) as srv:
        c = srv.client()
        cred = c.register_credential(TENANT, "GCS_HMAC", sample("GCS_HMAC"))
        mount_id = c.create_mount(
            TENANT, name="m", bucket="b", credential_id=cred.credential_id
        ).mount_id
        with pytest.raises(errors.InvalidArgument) as info:
            c.sign_urls(TENANT, mount_id, [f"k{i}" for i in range(MAX_BATCH_KEYS + 1)])
        assert info.value.reason == "BATCH_TOO_LARGE"
        assert len(c.sign_urls(TENANT, mount_id, [f"k{i}" for i in range(MAX_BATCH_KEYS)])) == (
            MAX_BATCH_KEYS
        )


# -- streams and the per-principal concurrency cap ----------------------------------


@dataclass(frozen=True)
class HeldHandle(LocalHandle):
    """Lists once released; each listing signals that it is in flight."""

    listing: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    release: threading.Event = field(default_factory=threading.Event)

    def list(self, mount: Mount, request: ListRequest) -> Iterator[ListPage]:
        self.listing.release()
        assert self.release.wait(30)
        yield from super().list(mount, request)


class HeldProvider(LocalProvider):
    def __init__(
        self, base: LocalProvider, listing: threading.Semaphore, release: threading.Event
    ) -> None:
        super().__init__(base.name, base.kinds, base.max_url_seconds, ("a.jpg",))
        self.listing, self.release = listing, release

    def open(self, credential: Credential, secret: ParsedSecret) -> CredentialHandle:
        return HeldHandle(credential.credential_id, ("a.jpg",), self.listing, self.release)


def test_streams_beyond_a_principals_cap_are_refused_while_another_is_served(
    tmp_path: Path,
) -> None:
    listing, release = threading.Semaphore(0), threading.Event()
    providers: list[CloudProvider] = [
        HeldProvider(p, listing, release) if p.name == "gcs" and isinstance(p, LocalProvider) else p
        for p in local_providers()
    ]
    data_dir, tokens = _data_dir(tmp_path, {"noisy": {"concurrency": 2, "rps": 0}})
    with start_server(tmp_path, data_dir=data_dir, providers=providers) as srv:
        mount_id = _mount(srv)
        noisy, quiet = srv.client(tokens["noisy"]), srv.client(tokens["quiet"])
        listed: list[str] = []
        lock = threading.Lock()

        def lister(who: str) -> None:
            client = noisy if who == "noisy" else quiet
            pages = list(client.list_prefix(TENANT, mount_id))
            with lock:
                listed.append(who)
            assert pages

        held = [threading.Thread(target=lister, args=("noisy",)) for _ in range(2)]
        quiet_one: threading.Thread | None = None
        try:
            for t in held:
                t.start()
            # Both of noisy's streams are inside the provider: its two slots are taken.
            assert listing.acquire(timeout=10) and listing.acquire(timeout=10)
            raw = noisy.signer.ListPrefix(
                signer_pb2.ListPrefixRequest(tenant=TENANT, mount_id=mount_id),
                metadata=(("authorization", f"Bearer {tokens['noisy']}"),),
                timeout=10,
            )
            with pytest.raises(grpc.RpcError) as refused:
                list(raw)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            call = refused.value
            assert isinstance(call, grpc.Call) and retry_delay(call) == pytest.approx(0.1)
            with pytest.raises(errors.ResourceExhausted) as sdk:
                list(noisy.list_prefix(TENANT, mount_id))
            assert sdk.value.reason == "TOO_MANY_CONCURRENT_CALLS"
            # The quiet caller's stream is admitted and reaches the provider meanwhile.
            quiet_one = threading.Thread(target=lister, args=("quiet",))
            quiet_one.start()
            assert listing.acquire(timeout=10)
        finally:
            release.set()
        for t in held:
            t.join(10)
        assert quiet_one is not None
        quiet_one.join(10)
        assert sorted(listed) == ["noisy", "noisy", "quiet"]
        # Both slots are free again once the streams ended.
        assert list(noisy.list_prefix(TENANT, mount_id))
