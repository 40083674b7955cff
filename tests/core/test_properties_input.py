"""Properties of request input: object keys, prefixes, tenant and mount ids, TTLs,
methods (pure rules, then a bounded number through the real server), and sealed blobs
(truncated, bit-flipped, wrong suite, wrong info, replayed into another tenant or kind).

Every refusal is a BucketVaultError with a catalogued reason, the catalogue's status,
and no secret in its text; a refused registration stores nothing and its refusal is
audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from core.conftest import PRINCIPALS
from core.secrets_fixtures import KINDS, sample
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bucketvault import errors
from bucketvault.app.common import tenant_name
from bucketvault.crypto import hpke
from bucketvault.objectkeys import MAX_KEY_BYTES, check_key, check_mount_prefix, check_prefix
from bucketvault.reasons import REASONS
from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import RunningServer, start_server
from bucketvault.v1 import vault_pb2

MARK = "Zq9LEAKMARK7f"
CATALOGUE = {r.name: r for r in REASONS}
FAST = settings(max_examples=200, deadline=None)
E2E = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _clean(exc: errors.BucketVaultError) -> errors.BucketVaultError:
    assert exc.reason in CATALOGUE and exc.reason != "INTERNAL", exc.reason
    expected = CATALOGUE[exc.reason].error
    assert expected is not None
    # Over the wire the class is rebuilt from the status: compare status codes.
    assert type(exc).code == expected.code, (exc.reason, type(exc))
    for text in (exc.message, repr(exc), str(exc)):
        assert MARK not in text
    return exc


# -- pure rules -------------------------------------------------------------------------

KEY_TEXT = st.text(
    st.characters(codec=None, exclude_categories=()),
    max_size=40,
) | st.sampled_from(["", ".", "..", "a/./b", "a/../b", "/x", "\x00", "\x7f", "\x85", "\ud800"])


# What protobuf can carry: no lone surrogates (those are refused by the pure rules above).
WIRE_KEY = KEY_TEXT.filter(lambda k: not any(0xD800 <= ord(c) <= 0xDFFF for c in k))


@FAST
@given(key=KEY_TEXT, mount_prefix=st.sampled_from(["", "img/", "a/b/"]))
def test_keys_are_accepted_only_when_well_formed_and_under_the_prefix(
    key: str, mount_prefix: str
) -> None:
    full = mount_prefix + key
    try:
        assert check_key(full, mount_prefix) == full
    except errors.BucketVaultError as exc:
        _clean(exc)
        assert exc.reason == "INVALID_KEY"
        return
    segments = full.split("/")
    assert full and "." not in segments and ".." not in segments
    assert not any(
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in full
    )


@FAST
@given(key=KEY_TEXT, mount_prefix=st.sampled_from(["img/", "a/b/"]))
def test_keys_outside_the_mount_are_permission_denied(key: str, mount_prefix: str) -> None:
    if key.startswith(mount_prefix):
        return
    try:
        check_key(key, mount_prefix)
    except errors.BucketVaultError as exc:
        assert _clean(exc).reason in ("INVALID_KEY", "KEY_OUTSIDE_MOUNT")
    else:
        pytest.fail("a key outside the mount was accepted")


@FAST
@given(extra=st.integers(1, 3000), char=st.sampled_from(["a", "é", "漢", "😀"]))
def test_long_keys_and_prefixes_are_refused_by_utf8_length(extra: int, char: str) -> None:
    long = char * (MAX_KEY_BYTES // len(char.encode()) + extra)
    with pytest.raises(errors.InvalidArgument) as exc:
        check_key(long, "")
    assert exc.value.reason == "INVALID_KEY"
    with pytest.raises(errors.InvalidArgument) as exc:
        check_prefix(long, "")
    assert exc.value.reason == "INVALID_PREFIX"


@FAST
@given(prefix=KEY_TEXT, mount_prefix=st.sampled_from(["", "img/"]))
def test_prefixes_and_mount_prefixes_refuse_cleanly(prefix: str, mount_prefix: str) -> None:
    for call in (lambda: check_prefix(prefix, mount_prefix), lambda: check_mount_prefix(prefix)):
        try:
            call()
        except errors.BucketVaultError as exc:
            assert _clean(exc).reason in ("INVALID_PREFIX", "KEY_OUTSIDE_MOUNT")


@FAST
@given(tenant=st.text(max_size=70))
def test_tenant_names(tenant: str) -> None:
    try:
        assert tenant_name(tenant) == tenant
    except errors.BucketVaultError as exc:
        assert _clean(exc).reason in ("MISSING_FIELD", "INVALID_FIELD")
        assert exc.field == "tenant"


# -- sealed blobs, pure ------------------------------------------------------------------

SUITES = list(hpke.Suite)
KEYS = {suite: hpke.generate(suite) for suite in SUITES}
SECRET = f'{{"access_id":"GOOG1EXAMPLE","secret":"{MARK}"}}'.encode()


@FAST
@given(
    suite=st.sampled_from(SUITES),
    cut=st.integers(0, 2000),
    flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 255)), max_size=3),
    extra=st.binary(max_size=8),
)
def test_damaged_blobs_never_open(
    suite: hpke.Suite, cut: int, flips: list[tuple[int, int]], extra: bytes
) -> None:
    private, public = KEYS[suite]
    original = hpke.seal(suite, public, "acme", "GCS_HMAC", SECRET)
    blob = bytearray(original)
    for position, mask in flips:
        blob[position % len(blob)] ^= mask
    damaged = bytes(blob[: min(cut, len(blob))]) + extra
    if damaged == original:
        assert hpke.open_sealed(suite, private, "acme", "GCS_HMAC", damaged) == SECRET
        return
    with pytest.raises(errors.CryptoError) as exc:
        hpke.open_sealed(suite, private, "acme", "GCS_HMAC", damaged)
    assert _clean(exc.value).reason == "UNSEAL_FAILED"


@FAST
@given(
    suite=st.sampled_from(SUITES),
    tenant=st.text(max_size=12),
    kind=st.sampled_from([*KINDS, "", "gcs_hmac"]),
)
def test_blobs_open_only_for_their_tenant_kind_and_suite(
    suite: hpke.Suite, tenant: str, kind: str
) -> None:
    private, public = KEYS[suite]
    blob = hpke.seal(suite, public, "acme", "GCS_HMAC", SECRET)
    other = SUITES[(SUITES.index(suite) + 1) % len(SUITES)]
    with pytest.raises(errors.CryptoError):
        hpke.open_sealed(other, KEYS[other][0], "acme", "GCS_HMAC", blob)
    if (tenant, kind) == ("acme", "GCS_HMAC"):
        return
    with pytest.raises(errors.CryptoError) as exc:
        hpke.open_sealed(suite, private, tenant, kind, blob)
    _clean(exc.value)


# -- end to end, bounded: the real server --------------------------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("props")
    # A links listener too: CreateLinks shares SignURLs' key check.
    links = {"BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0"}
    with start_server(
        tmp, env=links, principals=PRINCIPALS, providers=local_providers()
    ) as running:
        yield running


@pytest.fixture(scope="module")
def mount(srv: RunningServer) -> Any:
    c = srv.client()
    cred = c.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC"))
    return c.create_mount(
        "acme",
        name="props",
        bucket="b",
        prefix="img/",
        credential_id=cred.credential_id,
        allowed_methods=("GET",),
        max_ttl_seconds=3600,
    )


def _count(srv: RunningServer, tenant: str = "acme") -> tuple[int, int]:
    c = srv.client()
    registers = [r for r in c.query_audit(tenant) if r.action == "vault.register"]
    return len(list(c.list_credentials(tenant))), len([r for r in registers if r.outcome != "ok"])


@E2E
@given(
    key=WIRE_KEY.map(lambda k: "img/" + k) | WIRE_KEY,
    ttl=st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 3600, 3601]),
    # Proto enums are open: an unknown number reaches the server as it is.
    method=st.sampled_from(["GET", "HEAD", "PUT", "METHOD_UNSPECIFIED", 7, 99, 2**31 - 1]),
)
def test_sign_requests_through_the_server(
    srv: RunningServer, mount: Any, key: str, ttl: int, method: str | int
) -> None:
    c = srv.client()
    try:
        c.sign_url("acme", mount.mount_id, key, method=method, ttl_seconds=ttl)
    except errors.BucketVaultError as exc:
        _clean(exc)
    else:
        assert method in ("GET", "METHOD_UNSPECIFIED") and 0 <= ttl <= 3600
        check_key(key, "img/")


@E2E
@given(
    tenant=st.sampled_from(["acme", "", "Acme", "a" * 64, "ac me", "-x"]) | st.text(max_size=8),
    mount_id=st.sampled_from(["", "mnt_nope", "../x", "\x00"]) | st.text(max_size=12),
)
def test_tenant_and_mount_ids_through_the_server(
    srv: RunningServer, mount: Any, tenant: str, mount_id: str
) -> None:
    c = srv.client()
    if (tenant, mount_id) == ("acme", mount.mount_id):
        return
    with pytest.raises(errors.BucketVaultError) as exc:
        c.sign_url(tenant, mount_id, "img/a.jpg")
    _clean(exc.value)
    with pytest.raises(errors.BucketVaultError) as exc:
        list(c.list_prefix(tenant, mount_id))
    _clean(exc.value)


@E2E
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_refused_registrations_store_nothing_and_are_audited(
    srv: RunningServer, kind: str, data: st.DataObject
) -> None:
    c = srv.client()
    doc = dict(sample(kind, MARK))
    change = data.draw(st.sampled_from(["drop", "type", "huge", "garble"]))
    name = data.draw(st.sampled_from(sorted(doc)))
    if change == "drop":
        doc.pop(name)
    elif change == "type":
        doc[name] = data.draw(st.integers() | st.lists(st.integers(), max_size=2) | st.none())
    elif change == "huge":
        doc[name] = MARK * 2000
    else:
        doc[name] = f"\x00{MARK}\u202e"
    before = _count(srv, "globex")
    try:
        c.register_credential("globex", kind, doc)
    except errors.BucketVaultError as exc:
        _clean(exc)
        stored, refused = _count(srv, "globex")
        assert (stored, refused) == (before[0], before[1] + 1)
    else:
        # Only an extra field the kind keeps, or an optional field dropped, may pass.
        assert _count(srv, "globex")[0] == before[0] + 1


@E2E
@given(
    suite=st.sampled_from(
        [
            vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM,
            vault_pb2.HPKE_SUITE_MLKEM768_X25519_SHA256_AES256GCM,
        ]
    ),
    attack=st.sampled_from(
        ["truncate", "flip", "other-tenant", "other-kind", "other-suite", "append"]
    ),
    where=st.integers(0, 10_000),
)
def test_hostile_sealed_blobs_through_the_server(
    srv: RunningServer, suite: int, attack: str, where: int
) -> None:
    c = srv.client()
    tenant, kind = "acme", "GCS_HMAC"
    secret = {"access_id": "GOOG1EXAMPLE", "secret": MARK}
    sealed = c.seal("globex" if attack == "other-tenant" else tenant, kind, secret, suite=suite)
    blob = bytearray(sealed.sealed)
    if attack == "truncate":
        blob = blob[: where % len(blob)] or bytearray(b"\x00")
    elif attack == "flip":
        blob[where % len(blob)] ^= 1 << (where % 8)
    elif attack == "append":
        blob += b"\x00"
    elif attack == "other-suite":
        other = (
            vault_pb2.HPKE_SUITE_MLKEM768_X25519_SHA256_AES256GCM
            if suite == vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM
            else vault_pb2.HPKE_SUITE_X25519_SHA256_AES256GCM
        )
        sealed.key_id = c.registration_key(other).key_id
    sealed.sealed = bytes(blob)
    before = _count(srv)
    with pytest.raises(errors.BucketVaultError) as exc:
        c.register_sealed(tenant, "S3_ACCESS_KEY" if attack == "other-kind" else kind, sealed)
    assert _clean(exc.value).reason == "UNSEAL_FAILED"
    assert _count(srv) == (before[0], before[1] + 1)


@pytest.mark.parametrize(
    ("bad", "reason", "status"),
    [
        ("img/a/../b.jpg", "INVALID_KEY", errors.InvalidArgument),
        ("img/a\x07.jpg", "INVALID_KEY", errors.InvalidArgument),
        ("other/c.jpg", "KEY_OUTSIDE_MOUNT", errors.PermissionDenied),
    ],
)
def test_a_refused_key_in_a_batch_is_named_by_its_index(
    srv: RunningServer, mount: Any, bad: str, reason: str, status: type[Exception]
) -> None:
    """SignURLs and CreateLinks check every key with one rule (objectkeys.check_keys);
    the refusal names the key's place in the request, and one bad key refuses the batch."""
    c = srv.client()
    keys = ["img/ok-0.jpg", "img/ok-1.jpg", bad, "img/ok-3.jpg"]
    with pytest.raises(status) as signed:
        c.sign_urls("acme", mount.mount_id, keys)
    with pytest.raises(status) as linked:
        c.create_links("acme", mount.mount_id, keys)
    for exc in (signed.value, linked.value):
        assert isinstance(exc, errors.BucketVaultError)
        assert (exc.reason, exc.field) == (reason, "keys[2]")
    assert len(c.sign_urls("acme", mount.mount_id, keys[:2])) == 2
