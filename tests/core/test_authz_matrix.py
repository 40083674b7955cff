"""Every RPC x role x situation, allowed or denied, through the real server.

Two principals per role: ``<role>-scoped`` holds one grant (acme, mount "photos", prefix
"2024/", GET and HEAD, at most 300 s), ``<role>-wide`` is an entry without grants on acme
(today's meaning: every mount of the tenant). The mounts allow GET, HEAD and PUT for up to
3600 s, so every denial below comes from the principal's policy, not from the mount.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from core.policy_support import policy_server
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.client import BucketVaultClient
from bucketvault.testing.server import RunningServer
from bucketvault.v1 import audit_pb2, signer_pb2, vault_pb2

ROLES = ("signer", "operator", "auditor")
KINDS = ("scoped", "wide")
SITUATIONS = ("own", "other_tenant", "other_mount", "outside_prefix", "method", "ttl")
SCOPED_GRANT = {
    "tenant": "acme",
    "mounts": ["photos"],
    "prefixes": ["2024/"],
    "methods": ["GET", "HEAD"],
    "max_ttl_seconds": 300,
}
ENTRIES = [
    *({"name": f"{r}-scoped", "roles": [r], "grants": [SCOPED_GRANT]} for r in ROLES),
    *({"name": f"{r}-wide", "roles": [r], "tenants": ["acme"]} for r in ROLES),
]

# Cell letters, in SITUATIONS order: A allowed; - does not apply to the RPC; otherwise
# denied with PERMISSION_DENIED and the reason below (H: the call succeeds but the mount
# is left out of the listing).
REASONS = {
    "D": "PERMISSION_DENIED",
    "T": "TENANT_GRANT_REQUIRED",
    "M": "MOUNT_NOT_GRANTED",
    "P": "PREFIX_NOT_GRANTED",
    "X": "METHOD_NOT_GRANTED",
    "L": "TTL_OVER_PRINCIPAL_CAP",
}


@dataclass(frozen=True)
class Row:
    rpc: str
    # Roles that may make the call; a role outside them gets D in every cell that applies.
    roles: frozenset[str]
    scoped: str
    wide: str


ALL = frozenset(ROLES)
OP, AUD, SIGNER = frozenset({"operator"}), frozenset({"auditor"}), frozenset({"signer"})
ROWS = [
    # GetRegistrationKey: public key, any authenticated caller; names no tenant.
    Row("GetRegistrationKey", ALL, scoped="A-----", wide="A-----"),
    # Tenant-wide calls: a grant limited to some mounts does not reach them.
    Row("GetAwsTrustPolicy", OP, scoped="TD----", wide="AD----"),
    Row("GetOnboarding", OP, scoped="TD----", wide="AD----"),
    Row("RegisterCredential", OP, scoped="TD----", wide="AD----"),
    Row("GetCredential", OP | AUD, scoped="TD----", wide="AD----"),
    Row("ListCredentials", OP | AUD, scoped="TD----", wide="AD----"),
    Row("RevokeCredential", OP, scoped="TD----", wide="AD----"),
    Row("CreateMount", OP, scoped="TD----", wide="AD----"),
    # Rebinding picks among the tenant's credentials: tenant-wide too.
    Row("RebindMount", OP, scoped="TDT---", wide="ADA---"),
    # Grants name mounts: a rename, or a delete and a create under the old name, could move
    # a mount into another principal's grant, so changing and deleting are tenant-wide too.
    Row("UpdateMount", OP, scoped="TDT---", wide="ADA---"),
    Row("DeleteMount", OP, scoped="TDT---", wide="ADA---"),
    # One mount: its grant decides; prefixes, methods and TTLs are about URLs only.
    Row("GetMount", ALL, scoped="ADM---", wide="ADA---"),
    Row("ListMounts", ALL, scoped="ADH---", wide="ADA---"),
    Row("CheckMount", OP, scoped="ADM---", wide="ADA---"),
    # Signing: mount, every key, method, TTL. A listing always reads (GET): no method cell.
    Row("SignURL", SIGNER, scoped="ADMPXL", wide="ADAAAA"),
    Row("SignURLs", SIGNER, scoped="ADMPXL", wide="ADAAAA"),
    Row("ListPrefix", SIGNER, scoped="ADMP-L", wide="ADAA-A"),
    # Links: what signing needs, for every method of the link (GET and HEAD by default,
    # which the scoped grant allows); a link has no URL lifetime of its own to ask.
    Row("CreateLink", SIGNER, scoped="ADMP--", wide="ADAA--"),
    Row("CreateLinks", SIGNER, scoped="ADMP--", wide="ADAA--"),
    # Revoking needs a grant reaching the link's mount; signers and operators may.
    Row("RevokeLink", SIGNER | OP, scoped="ADM---", wide="ADA---"),
    Row("QueryAudit", AUD, scoped="TD----", wide="AD----"),
    # VerifyAudit reads every tenant's chain: only an all-tenant auditor (the admin here,
    # test_all_tenant_auditor_verifies) may; both principals are bound to acme.
    Row("VerifyAudit", AUD, scoped="D-----", wide="D-----"),
    # The audit key's public half: any authenticated caller, like the registration key.
    Row("GetAuditKey", ALL, scoped="A-----", wide="A-----"),
    # An export spans every tenant's records, like VerifyAudit.
    Row("ExportAudit", AUD, scoped="D-----", wide="D-----"),
]


def _cells() -> Iterator[Any]:
    for row in ROWS:
        for role in ROLES:
            for kind in KINDS:
                cells = row.scoped if kind == "scoped" else row.wide
                for situation, letter in zip(SITUATIONS, cells, strict=True):
                    if letter == "-":
                        continue
                    expected = letter if role in row.roles else "D"
                    yield pytest.param(
                        row.rpc,
                        f"{role}-{kind}",
                        situation,
                        expected,
                        id=f"{row.rpc}-{role}-{kind}-{situation}-{expected}",
                    )


@dataclass(frozen=True)
class Target:
    tenant: str
    mount_id: str
    credential_id: str
    keys: tuple[str, ...]
    prefix: str
    method: str
    ttl: int


@dataclass
class World:
    server: RunningServer
    admin: BucketVaultClient
    targets: dict[str, Target]
    clients: dict[str, BucketVaultClient]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("matrix")
    links = {"BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0"}
    with policy_server(tmp, ENTRIES, keys=("2024/a.jpg", "2023/b.jpg"), env=links) as server:
        admin = server.client()
        ids: dict[str, tuple[str, str]] = {}
        for tenant in ("acme", "globex"):
            cred = admin.register_credential(tenant, "GCS_HMAC", sample("GCS_HMAC"))
            for name in ("photos", "other"):
                mount = admin.create_mount(
                    tenant,
                    name=name,
                    bucket="b",
                    credential_id=cred.credential_id,
                    allowed_methods=["GET", "HEAD", "PUT"],
                    max_ttl_seconds=3600,
                )
                ids[f"{tenant}/{name}"] = (mount.mount_id, cred.credential_id)
        good = ("2024/a.jpg", "2024/b.jpg")
        base = dict(keys=good, prefix="2024/", method="GET", ttl=60)

        def target(where: str, **over: Any) -> Target:
            mount_id, cred_id = ids[where]
            return Target(where.partition("/")[0], mount_id, cred_id, **{**base, **over})

        targets = {
            "own": target("acme/photos"),
            "other_tenant": target("globex/photos"),
            "other_mount": target("acme/other"),
            # One key of the batch outside the grant denies the whole batch.
            "outside_prefix": target(
                "acme/photos", keys=("2024/a.jpg", "2023/b.jpg"), prefix="2023/"
            ),
            "method": target("acme/photos", method="PUT"),
            "ttl": target("acme/photos", ttl=600),
        }
        clients = {e["name"]: server.client(server.tokens[e["name"]]) for e in ENTRIES}
        yield World(server, admin, targets, clients)


class Hidden(Exception):
    """The call succeeded but did not show the target."""


def _fresh_credential(w: World, t: Target) -> str:
    cred = w.admin.register_credential(t.tenant, "GCS_HMAC", sample("GCS_HMAC"))
    return cred.credential_id


def _list_mounts(w: World, c: BucketVaultClient, t: Target) -> object:
    ids = {m.mount_id for m in c.list_mounts(t.tenant)}
    if t.mount_id not in ids:
        raise Hidden(t.mount_id)
    return ids


def _rebind(w: World, c: BucketVaultClient, t: Target) -> object:
    new = _fresh_credential(w, t)
    version = w.admin.get_mount(t.tenant, t.mount_id).version
    return c.rebind_mount(t.tenant, t.mount_id, new, version)


def _update(w: World, c: BucketVaultClient, t: Target) -> object:
    mount = w.admin.get_mount(t.tenant, t.mount_id)
    # The same policy again: a change the other cells do not notice, but a version bump.
    return c.update_mount(t.tenant, t.mount_id, mount.version, policy=mount.policy)


def _delete(w: World, c: BucketVaultClient, t: Target) -> object:
    # A mount of the target's tenant made for the call: deleting the shared ones would
    # change the other cells. The decision is tenant-wide, so any mount of it will do.
    mount = w.admin.create_mount(
        t.tenant, name=f"d-{secrets.token_hex(4)}", bucket="b", credential_id=t.credential_id
    )
    return c.delete_mount(t.tenant, mount.mount_id, mount.version)


def _list_prefix(w: World, c: BucketVaultClient, t: Target) -> object:
    pages = list(c.list_prefix(t.tenant, t.mount_id, prefix=t.prefix, sign_ttl_seconds=t.ttl))
    assert all(e.url for p in pages for e in p.entries)
    return pages


Call = Callable[[World, BucketVaultClient, Target], object]
CALLS: dict[str, Call] = {
    "GetRegistrationKey": lambda w, c, t: c.registration_key(),
    "GetAwsTrustPolicy": lambda w, c, t: c.trust_policy(t.tenant),
    # The local providers' first family (the one issuing trust policies) onboards its kinds.
    "GetOnboarding": lambda w, c, t: c.onboarding(t.tenant, "AWS_ROLE"),
    "RegisterCredential": lambda w, c, t: c.register_credential(
        t.tenant, "GCS_HMAC", sample("GCS_HMAC")
    ),
    "GetCredential": lambda w, c, t: c.get_credential(t.tenant, t.credential_id),
    "ListCredentials": lambda w, c, t: list(c.list_credentials(t.tenant)),
    "RevokeCredential": lambda w, c, t: c.revoke_credential(t.tenant, _fresh_credential(w, t)),
    "CreateMount": lambda w, c, t: c.create_mount(
        t.tenant, name=f"m-{secrets.token_hex(4)}", bucket="b", credential_id=t.credential_id
    ),
    "RebindMount": _rebind,
    "UpdateMount": _update,
    "DeleteMount": _delete,
    "GetMount": lambda w, c, t: c.get_mount(t.tenant, t.mount_id),
    "ListMounts": _list_mounts,
    "CheckMount": lambda w, c, t: c.check_mount(t.tenant, t.mount_id),
    "SignURL": lambda w, c, t: c.sign_url(
        t.tenant, t.mount_id, t.keys[-1], method=t.method, ttl_seconds=t.ttl
    ),
    "SignURLs": lambda w, c, t: c.sign_urls(
        t.tenant, t.mount_id, t.keys, method=t.method, ttl_seconds=t.ttl
    ),
    "ListPrefix": _list_prefix,
    "CreateLink": lambda w, c, t: c.create_link(t.tenant, t.mount_id, t.keys[-1]),
    "CreateLinks": lambda w, c, t: c.create_links(t.tenant, t.mount_id, t.keys),
    "RevokeLink": lambda w, c, t: c.revoke_link(t.tenant, t.mount_id, "lnk_" + "0" * 20),
    "QueryAudit": lambda w, c, t: list(c.query_audit(t.tenant, limit=1)),
    "VerifyAudit": lambda w, c, t: c.verify_audit(),
    "GetAuditKey": lambda w, c, t: c.audit_key(),
    "ExportAudit": lambda w, c, t: list(c.export_audit()),
}


def test_the_matrix_covers_every_rpc_of_the_contract() -> None:
    contract = {
        m.name
        for module in (vault_pb2, signer_pb2, audit_pb2)
        for s in module.DESCRIPTOR.services_by_name.values()
        for m in s.methods
    }
    assert {r.rpc for r in ROWS} == contract == set(CALLS)
    for row in ROWS:
        assert len(row.scoped) == len(row.wide) == len(SITUATIONS), row.rpc
        # A cell applies to both principals or to neither.
        assert [c == "-" for c in row.scoped] == [c == "-" for c in row.wide], row.rpc


@pytest.mark.parametrize(("rpc", "principal", "situation", "expected"), list(_cells()))
def test_cell(world: World, rpc: str, principal: str, situation: str, expected: str) -> None:
    call = CALLS[rpc]
    client = world.clients[principal]
    target = world.targets[situation]
    if expected == "A":
        call(world, client, target)
    elif expected == "H":
        with pytest.raises(Hidden):
            call(world, client, target)
    else:
        with pytest.raises(errors.PermissionDenied) as exc:
            call(world, client, target)
        assert exc.value.reason == REASONS[expected]


def test_a_default_ttl_is_capped_by_the_grant_not_refused(world: World) -> None:
    t = world.targets["own"]
    url = world.clients["signer-scoped"].sign_url(t.tenant, t.mount_id, t.keys[0])
    assert url.expiry_capped_by == "PRINCIPAL_MAX_TTL"
    wide = world.clients["signer-wide"].sign_url(t.tenant, t.mount_id, t.keys[0])
    assert wide.expiry_capped_by == ""  # the server default (900 s) is below the mount's


def test_a_scoped_listing_signs_only_inside_the_grant(world: World) -> None:
    t = world.targets["own"]
    pages = list(world.clients["signer-scoped"].list_prefix(t.tenant, t.mount_id, prefix="2024/"))
    assert [e.key for p in pages for e in p.entries] == ["2024/a.jpg"]


def test_all_tenant_auditor_verifies(world: World) -> None:
    assert world.admin.verify_audit().ok


@pytest.mark.parametrize("role", ROLES)
def test_missing_and_ungranted_mounts_answer_alike(world: World, role: str) -> None:
    client = world.clients[f"{role}-scoped"]
    other = world.targets["other_mount"]
    call: Call = {
        "signer": CALLS["SignURL"],
        "operator": CALLS["CheckMount"],
        "auditor": CALLS["GetMount"],
    }[role]
    answers = set()
    for mount_id in (other.mount_id, "mnt_doesnotexist00000000", "mnt_" + "0" * 20):
        probe = Target(other.tenant, mount_id, other.credential_id, ("2024/a.jpg",), "", "GET", 60)
        with pytest.raises(errors.BucketVaultError) as exc:
            call(world, client, probe)
        answers.add((type(exc.value), exc.value.reason, exc.value.message, exc.value.field))
    assert len(answers) == 1, answers
    assert answers.pop()[1] == "MOUNT_NOT_GRANTED"


def test_missing_and_other_tenants_answer_alike(world: World) -> None:
    client = world.clients["operator-scoped"]
    t = world.targets["other_tenant"]
    for call, resource in (
        (client.get_mount, t.mount_id),
        (client.get_credential, t.credential_id),
    ):
        answers = set()
        for tenant in ("globex", "nosuchtenant"):
            with pytest.raises(errors.PermissionDenied) as exc:
                call(tenant, resource)
            answers.add((exc.value.reason, exc.value.message))
        assert len(answers) == 1, answers


def test_a_tenant_wide_principal_still_learns_a_mount_is_missing(world: World) -> None:
    with pytest.raises(errors.NotFound) as exc:
        world.clients["auditor-wide"].get_mount("acme", "mnt_doesnotexist00000000")
    assert exc.value.reason == "MOUNT_NOT_FOUND"


def test_signing_by_uri_sees_only_granted_mounts_then_checks_the_grant(world: World) -> None:
    """SignURL.uri: resolution considers only the mounts the caller's grants reach, and
    the resolved call is then authorized as one made by mount_id and key."""
    scoped, wide = world.clients["signer-scoped"], world.clients["signer-wide"]
    photos = world.targets["own"].mount_id
    # acme's "photos" and "other" are both on bucket b with no prefix: the scoped signer
    # sees only "photos", a tenant-wide one sees two equally specific mounts.
    assert scoped.sign_url("acme", uri="gs://b/2024/a.jpg", ttl_seconds=60).mount_id == photos
    with pytest.raises(errors.FailedPrecondition) as amb:
        wide.sign_url("acme", uri="gs://b/2024/a.jpg")
    assert amb.value.reason == "AMBIGUOUS_MOUNT"
    for kw, reason in (
        ({"uri": "gs://b/2023/b.jpg"}, "PREFIX_NOT_GRANTED"),
        ({"uri": "gs://b/2024/a.jpg", "method": "PUT"}, "METHOD_NOT_GRANTED"),
        ({"uri": "gs://b/2024/a.jpg", "ttl_seconds": 600}, "TTL_OVER_PRINCIPAL_CAP"),
    ):
        with pytest.raises(errors.PermissionDenied) as denied:
            scoped.sign_url("acme", **kw)  # type: ignore[arg-type]
        assert denied.value.reason == reason
    urls = scoped.sign_urls("acme", "", (), uris=["gs://b/2024/a.jpg", "gs://b/2024/b.jpg"])
    assert [u.key for u in urls] == ["2024/a.jpg", "2024/b.jpg"]
    # Another tenant's mounts are refused before any lookup, as by mount_id.
    with pytest.raises(errors.PermissionDenied) as other:
        scoped.sign_url("globex", uri="gs://b/2024/a.jpg")
    assert other.value.reason == "PERMISSION_DENIED"
