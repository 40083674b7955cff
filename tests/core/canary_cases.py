"""The canary suite's table: one case per RPC, each driving success and failure paths
through raw gRPC stubs, so that every response's serialized bytes, every status's
details and trailing metadata and every exception repr can be searched for the canary.

The RPCs are enumerated from the generated service descriptors: a new RPC without an
entry in CASES fails ``missing_cases()``. To cover a new RPC, add one function to CASES
(keyed "Service/Method") that calls ``d.call`` with requests that succeed and fail.
Shared by the SQLite suite (tests/core) and the PostgreSQL one (tests/store).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import boto3
import grpc
from core.secrets_fixtures import KINDS, sample
from google.protobuf.message import Message

from bucketvault.client import BucketVaultClient
from bucketvault.client import _common as sdk
from bucketvault.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    common_pb2,
    signer_pb2,
    signer_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)

TENANT = "acme"
# (name, roles, tenants): a signer of the tenant (denied the vault's and audit's RPCs)
# and an operator of another tenant (denied everything of acme).
PRINCIPALS = [("viewer", ["signer"], [TENANT]), ("outsider", ["operator"], ["globex"])]
MISSING_ID = "0" * 20
# What the local providers' mounts list (relative to the mount's prefix).
LISTED = ("a.jpg", "b c.jpg", "sub/d.jpg")
GET, PUT = common_pb2.METHOD_GET, common_pb2.METHOD_PUT


def rpcs_in_descriptors() -> set[str]:
    """Every "Service/Method" the generated descriptors declare."""
    found = set()
    for module in (vault_pb2, signer_pb2, audit_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            found |= {f"{service.name}/{m.name}" for m in service.methods}
    return found


def canary_forms(canary: str) -> list[bytes]:
    """The canary as it could leak: raw, hex, base64 (std/url, padded or not), url-quoted,
    and the base64 of the padded shared key the samples build from it."""
    raw = canary.encode()
    padded_key = raw.ljust(32, b"x")
    b64s = [base64.b64encode(v) for v in (raw, padded_key)]
    b64s += [base64.urlsafe_b64encode(v) for v in (raw, padded_key)]
    b64s += [v.rstrip(b"=") for v in b64s]
    forms = {raw, binascii.hexlify(raw), binascii.hexlify(raw).upper(), *b64s}
    forms |= {quote(v.decode(), safe="").encode() for v in b64s}
    forms |= {quote_plus(v.decode()).encode() for v in b64s}
    return sorted(forms)


def sas_signature_forms(canary: str) -> list[bytes]:
    """The forms of the canary AZURE_SAS's sig=: an AZURE_SAS mount's signed URLs carry the
    customer's SAS by design (that is what an Azure SAS credential is for)."""
    sig = base64.b64encode(canary.encode())
    forms = {sig, quote(sig.decode(), safe="").encode(), quote_plus(sig.decode()).encode()}
    # Longest first: stripping "sig==" before "sig" leaves no stray padding behind.
    return sorted(forms, key=len, reverse=True)


@dataclass
class World:
    canary: str
    moto_url: str
    dead_url: str
    credentials: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, str] = field(default_factory=dict)
    bucket: str = ""
    link_ids: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Driver:
    """Calls RPCs on raw stubs and keeps every byte that came back."""

    address: str
    tokens: dict[str, str]  # principal name -> token; "admin" included
    world: World
    # (rpc, the request's mount_id or "", the response's serialized bytes)
    responses: list[tuple[str, str, bytes]] = field(default_factory=list)
    errors: list[tuple[str, bytes]] = field(default_factory=list)
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    first_request: dict[str, Message] = field(default_factory=dict)
    _channel: grpc.Channel | None = None

    def __post_init__(self) -> None:
        self._channel = grpc.insecure_channel(self.address)
        self._stubs: dict[str, Any] = {
            "VaultService": vault_pb2_grpc.VaultServiceStub(self._channel),
            "SignerService": signer_pb2_grpc.SignerServiceStub(self._channel),
            "AuditService": audit_pb2_grpc.AuditServiceStub(self._channel),
        }
        self._streaming = {
            f"{s.name}/{m.name}"
            for mod in (vault_pb2, signer_pb2, audit_pb2)
            for s in mod.DESCRIPTOR.services_by_name.values()
            for m in s.methods
            if m.server_streaming
        }

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def call(self, rpc: str, request: Message, *, who: str = "admin") -> Any:
        """The response (a list of messages for a stream), or None if the call failed."""
        self.first_request.setdefault(rpc, request)
        service, _, method = rpc.partition("/")
        stub = getattr(self._stubs[service], method)
        token = self.tokens.get(who, "")
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            if rpc in self._streaming:
                response: Any = list(stub(request, metadata=metadata, timeout=30))
                data = b"".join(m.SerializeToString() for m in response)
            else:
                response = stub(request, metadata=metadata, timeout=30)
                data = response.SerializeToString()
        except grpc.RpcError as exc:
            self._record_error(rpc, who, exc)
            return None
        mount_id = (
            getattr(request, "mount_id", "")
            if "mount_id" in request.DESCRIPTOR.fields_by_name
            else ""
        )
        self.responses.append((rpc, mount_id, data))
        self.outcomes.setdefault(rpc, []).append(f"{who}:OK")
        return response

    def _record_error(self, rpc: str, who: str, exc: grpc.RpcError) -> None:
        call: Any = exc
        parts = [str(call.details() or ""), str(exc), repr(exc)]
        for key, value in call.trailing_metadata() or ():
            parts.append(key)
            parts.append(value.hex() if isinstance(value, bytes) else str(value))
            if isinstance(value, bytes):
                self.errors.append((rpc, value))  # grpc-status-details-bin, raw
        translated = sdk.translate(exc)
        parts += [repr(translated), str(translated), repr(translated.metadata)]
        self.errors.append((rpc, "\n".join(parts).encode()))
        self.outcomes.setdefault(rpc, []).append(f"{who}:{call.code().name}")

    def probe_unauthenticated(self) -> None:
        """Every RPC once more without a token: the refusal must not echo the request."""
        for rpc, request in list(self.first_request.items()):
            self.call(rpc, request, who="nobody")


def _moto_bucket(moto_url: str) -> str:
    bucket = "canary-" + secrets.token_hex(4)
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=bucket)
    for name in ("img/a.jpg", "img/b c.jpg", "img/sub/d.jpg"):
        s3.put_object(Bucket=bucket, Key=name, Body=b"x")
    return bucket


def canary_env(world: World) -> dict[str, str]:
    """Server settings the cases need; the Azure app's own secret carries the canary too."""
    return {
        "BUCKETVAULT_AZURE_AUTHORITY_HOST": world.dead_url.replace("http:", "https:"),
        "BUCKETVAULT_AZURE_RETRY_TOTAL": "0",
        "BUCKETVAULT_AZURE_APP_CLIENT_ID": "00000000-0000-0000-0000-0000000000aa",
        "BUCKETVAULT_AZURE_APP_CLIENT_SECRET": world.canary + "-appsecret",
        "BUCKETVAULT_METRICS_LISTEN": "127.0.0.1:0",
        "BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0",
        "BUCKETVAULT_LOG_LEVEL": "DEBUG",
    }


def setup(d: Driver) -> None:
    """Register the canary in every kind and mount each credential (success paths of
    RegisterCredential and CreateMount, through the same raw stubs)."""
    w = d.world
    w.bucket = _moto_bucket(w.moto_url)
    sdk_client = BucketVaultClient(d.address, d.tokens["admin"])
    try:
        for kind in KINDS:
            doc = sample(kind, w.canary)
            if kind.startswith("AZURE"):
                # https: the Azure SDK refuses token credentials over plain http.
                doc["account_url"] = w.dead_url.replace("http:", "https:") + "/acct"
            sealed = sdk_client.seal(TENANT, kind, doc)
            request = sdk.register_request(TENANT, kind, sealed, kind.lower(), "")
            cred = d.call("VaultService/RegisterCredential", request)
            if cred is not None:
                w.credentials[kind] = cred.credential_id
    finally:
        sdk_client.close()
    for kind, cred_id in w.credentials.items():
        mount = d.call(
            "VaultService/CreateMount",
            vault_pb2.CreateMountRequest(
                tenant=TENANT,
                name="m-" + kind.lower().replace("_", "-"),
                bucket=w.bucket if kind == "AWS_ROLE" else "bucket",
                prefix="img/",
                region="us-east-1",
                # AWS_ROLE lists real objects on moto; the others fail fast offline.
                endpoint={"AWS_ROLE": w.moto_url, "S3_ACCESS_KEY": w.dead_url}.get(kind, ""),
                credential_id=cred_id,
                policy=vault_pb2.MountPolicy(
                    allowed_methods=[GET, common_pb2.METHOD_HEAD, PUT],
                    # The canary SAS lasts long: accept it, so its URLs are signed.
                    allow_credential_lifetime=kind == "AZURE_SAS",
                ),
            ),
        )
        if mount is not None:
            w.mounts[kind] = mount.mount_id


def _each_mount(w: World) -> Iterator[tuple[str, str]]:
    yield from w.mounts.items()
    yield "missing", "mnt_" + MISSING_ID


def _register(d: Driver) -> None:
    w, c = d.world, BucketVaultClient(d.address, d.tokens["admin"])
    try:
        # Bad input carrying the canary: the refusal must not quote it.
        for bad in (
            {"access_id": "GOOG1X", "secret": 5, "x": w.canary},
            {"access_id": w.canary * 20, "secret": w.canary},
            {"secret_access_key": w.canary},
        ):
            sealed = c.seal(TENANT, "GCS_HMAC", bad)
            d.call(
                "VaultService/RegisterCredential",
                sdk.register_request(TENANT, "GCS_HMAC", sealed, "", ""),
            )
        # Sealed for another kind than the one claimed: the HPKE context must not open.
        sealed = c.seal(TENANT, "S3_ACCESS_KEY", sample("S3_ACCESS_KEY", w.canary))
        d.call(
            "VaultService/RegisterCredential",
            sdk.register_request(TENANT, "GCS_HMAC", sealed, "", ""),
        )
        sealed = c.seal(TENANT, "GCS_HMAC", sample("GCS_HMAC", w.canary))
        good = sdk.register_request(TENANT, "GCS_HMAC", sealed, "", "")
        d.call("VaultService/RegisterCredential", good, who="viewer")
        d.call("VaultService/RegisterCredential", good, who="outsider")
    finally:
        c.close()


def _simple(
    rpc: str, ok: Callable[[World], Iterable[Message]], bad: Callable[[World], Iterable[Message]]
) -> Callable[[Driver], None]:
    """A case: ok requests as admin, bad requests as admin, the first ok one as the
    viewer and the outsider (denied by their grants where the RPC is not theirs)."""

    def case(d: Driver) -> None:
        oks = list(ok(d.world))
        for request in oks:
            d.call(rpc, request)
        for request in bad(d.world):
            d.call(rpc, request)
        for who in ("viewer", "outsider"):
            d.call(rpc, oks[0], who=who)

    return case


def _sign_url(w: World) -> Iterator[Message]:
    for _, mount_id in _each_mount(w):
        yield signer_pb2.SignURLRequest(
            tenant=TENANT, mount_id=mount_id, key="img/a b+c.jpg", ttl_seconds=600
        )
        yield signer_pb2.SignURLRequest(
            tenant=TENANT,
            mount_id=mount_id,
            key="img/up.jpg",
            method=PUT,
            content_type="image/jpeg",
        )


def _sign_urls(w: World) -> Iterator[Message]:
    keys = [f"img/{i}.jpg" for i in range(20)]
    for _, mount_id in _each_mount(w):
        yield signer_pb2.SignURLsRequest(tenant=TENANT, mount_id=mount_id, keys=keys)
        yield signer_pb2.SignURLsRequest(tenant=TENANT, mount_id=mount_id, keys=keys, compact=True)


def _mount_of(w: World, kind: str = "GCS_HMAC") -> str:
    return w.mounts.get(kind) or next(iter(w.mounts.values()))


def _create_link(d: Driver) -> None:
    w = d.world
    for _, mount_id in _each_mount(w):
        link = d.call(
            "SignerService/CreateLink",
            signer_pb2.CreateLinkRequest(tenant=TENANT, mount_id=mount_id, key="img/a.jpg"),
        )
        if link is not None:
            w.link_ids.append((mount_id, link.link_id))
    mount_id = _mount_of(w)
    bad = signer_pb2.CreateLinkRequest(
        tenant=TENANT, mount_id=mount_id, key="other/../x", prefix="img/"
    )
    d.call("SignerService/CreateLink", bad)
    first = d.first_request["SignerService/CreateLink"]
    d.call("SignerService/CreateLink", first, who="outsider")


def _revoke_link(d: Driver) -> None:
    w = d.world
    for mount_id, link_id in w.link_ids[:2]:
        request = signer_pb2.RevokeLinkRequest(
            tenant=TENANT, mount_id=mount_id, link_id=link_id, reason="canary"
        )
        d.call("SignerService/RevokeLink", request, who="outsider")
        d.call("SignerService/RevokeLink", request)
    d.call(
        "SignerService/RevokeLink",
        signer_pb2.RevokeLinkRequest(
            tenant=TENANT, mount_id=_mount_of(w), link_id="lnk_" + MISSING_ID
        ),
    )
    d.call(
        "SignerService/RevokeLink",
        signer_pb2.RevokeLinkRequest(tenant=TENANT, mount_id=_mount_of(w), link_id=""),
    )


def _rebind(d: Driver) -> None:
    w = d.world
    kind = "GCS_HMAC" if "GCS_HMAC" in w.mounts else next(iter(w.mounts))
    mount = d.call(
        "VaultService/GetMount", vault_pb2.GetMountRequest(tenant=TENANT, mount_id=w.mounts[kind])
    )
    other = w.credentials.get("GCS_SERVICE_ACCOUNT", w.credentials[kind])
    request = vault_pb2.RebindMountRequest(
        tenant=TENANT, mount_id=w.mounts[kind], credential_id=other, expected_version=mount.version
    )
    d.call("VaultService/RebindMount", request, who="viewer")
    d.call("VaultService/RebindMount", request)
    d.call("VaultService/RebindMount", request)  # stale expected_version
    d.call(
        "VaultService/RebindMount",
        vault_pb2.RebindMountRequest(
            tenant=TENANT, mount_id=w.mounts[kind], credential_id="cred_" + MISSING_ID
        ),
    )


def _update_mount(d: Driver) -> None:
    w = d.world
    mount_id = w.mounts[next(iter(w.mounts))]
    mount = d.call(
        "VaultService/GetMount", vault_pb2.GetMountRequest(tenant=TENANT, mount_id=mount_id)
    )
    request = vault_pb2.UpdateMountRequest(
        tenant=TENANT, mount_id=mount_id, expected_version=mount.version, name="m-renamed"
    )
    d.call("VaultService/UpdateMount", request, who="viewer")
    d.call("VaultService/UpdateMount", request)
    d.call("VaultService/UpdateMount", request)  # stale expected_version
    d.call(
        "VaultService/UpdateMount",
        vault_pb2.UpdateMountRequest(
            tenant=TENANT, mount_id="mnt_" + MISSING_ID, expected_version=1, name="x"
        ),
    )


def _delete_mount(d: Driver) -> None:
    # A mount of its own, so the other cases keep theirs.
    w = d.world
    kind = "GCS_HMAC" if "GCS_HMAC" in w.credentials else next(iter(w.credentials))
    mount = d.call(
        "VaultService/CreateMount",
        vault_pb2.CreateMountRequest(
            tenant=TENANT, name="m-doomed", bucket="bucket", credential_id=w.credentials[kind]
        ),
    )
    request = vault_pb2.DeleteMountRequest(
        tenant=TENANT,
        mount_id=mount.mount_id if mount else "mnt_" + MISSING_ID,
        expected_version=mount.version if mount else 1,
    )
    d.call("VaultService/DeleteMount", request, who="viewer")
    d.call("VaultService/DeleteMount", request)
    d.call("VaultService/DeleteMount", request)  # already gone


def _revoke(d: Driver) -> None:
    # Last of the vault's cases: a revoked credential's mount then refuses to sign.
    w = d.world
    cred_id = w.credentials["GCS_HMAC"]
    request = vault_pb2.RevokeCredentialRequest(
        tenant=TENANT, credential_id=cred_id, reason="canary test"
    )
    d.call("VaultService/RevokeCredential", request, who="viewer")
    d.call("VaultService/RevokeCredential", request)
    d.call("VaultService/RevokeCredential", request)  # already revoked
    d.call(
        "VaultService/RevokeCredential",
        vault_pb2.RevokeCredentialRequest(tenant=TENANT, credential_id="cred_" + MISSING_ID),
    )
    if "GCS_HMAC" in w.mounts:
        d.call(
            "SignerService/SignURL",
            signer_pb2.SignURLRequest(
                tenant=TENANT, mount_id=w.mounts["GCS_HMAC"], key="img/a.jpg"
            ),
        )


def _kind_values() -> list[Any]:
    return [sdk.kind_value(k) for k in KINDS]


# "Service/Method" -> the case that drives it. Order matters only in that the audit's
# cases come last (they read what the others wrote) and revocation after signing.
CASES: dict[str, Callable[[Driver], None]] = {
    "VaultService/GetRegistrationKey": _simple(
        "VaultService/GetRegistrationKey",
        lambda w: [
            vault_pb2.GetRegistrationKeyRequest(),
            vault_pb2.GetRegistrationKeyRequest(suite=2),
        ],
        lambda w: [vault_pb2.GetRegistrationKeyRequest(suite=99)],  # type: ignore[arg-type]
    ),
    "VaultService/GetAwsTrustPolicy": _simple(
        "VaultService/GetAwsTrustPolicy",
        lambda w: [vault_pb2.GetAwsTrustPolicyRequest(tenant=TENANT)],
        lambda w: [vault_pb2.GetAwsTrustPolicyRequest(tenant="")],
    ),
    "VaultService/RegisterCredential": _register,
    "VaultService/GetCredential": _simple(
        "VaultService/GetCredential",
        lambda w: [
            vault_pb2.GetCredentialRequest(tenant=TENANT, credential_id=c)
            for c in w.credentials.values()
        ],
        lambda w: [
            vault_pb2.GetCredentialRequest(tenant=TENANT, credential_id="cred_" + MISSING_ID),
            # Not the canary: a requested id is recorded in the audit, as it should be.
            vault_pb2.GetCredentialRequest(tenant=TENANT, credential_id="not an id"),
        ],
    ),
    "VaultService/ListCredentials": _simple(
        "VaultService/ListCredentials",
        lambda w: [vault_pb2.ListCredentialsRequest(tenant=TENANT, page_size=3)],
        lambda w: [
            vault_pb2.ListCredentialsRequest(tenant=TENANT, page_token="garbage" + w.canary)
        ],
    ),
    "VaultService/CreateMount": _simple(
        "VaultService/CreateMount",
        lambda w: [
            vault_pb2.CreateMountRequest(
                tenant=TENANT,
                name="m-extra",
                bucket="bucket",
                credential_id=next(iter(w.credentials.values())),
            )
        ],
        lambda w: [
            vault_pb2.CreateMountRequest(
                tenant=TENANT, name="m-bad", bucket="b", credential_id="cred_" + MISSING_ID
            ),
            vault_pb2.CreateMountRequest(tenant=TENANT, name="", bucket="", credential_id=""),
        ],
    ),
    "VaultService/GetMount": _simple(
        "VaultService/GetMount",
        lambda w: [vault_pb2.GetMountRequest(tenant=TENANT, mount_id=m) for m in w.mounts.values()],
        lambda w: [vault_pb2.GetMountRequest(tenant=TENANT, mount_id="mnt_" + MISSING_ID)],
    ),
    "VaultService/ListMounts": _simple(
        "VaultService/ListMounts",
        lambda w: [vault_pb2.ListMountsRequest(tenant=TENANT, page_size=4)],
        lambda w: [vault_pb2.ListMountsRequest(tenant=TENANT, page_token="garbage")],
    ),
    "VaultService/CheckMount": _simple(
        "VaultService/CheckMount",
        lambda w: [
            vault_pb2.CheckMountRequest(tenant=TENANT, mount_id=m, origin="https://app.example.com")
            for m in w.mounts.values()
        ],
        lambda w: [vault_pb2.CheckMountRequest(tenant=TENANT, mount_id="mnt_" + MISSING_ID)],
    ),
    "VaultService/GetOnboarding": _simple(
        "VaultService/GetOnboarding",
        lambda w: [vault_pb2.GetOnboardingRequest(tenant=TENANT, kind=k) for k in _kind_values()],
        lambda w: [vault_pb2.GetOnboardingRequest(tenant=TENANT)],
    ),
    "SignerService/SignURL": _simple(
        "SignerService/SignURL",
        _sign_url,
        lambda w: [
            signer_pb2.SignURLRequest(tenant=TENANT, mount_id=_mount_of(w), key="other/x.jpg"),
            signer_pb2.SignURLRequest(tenant=TENANT, mount_id=_mount_of(w), key="img/../x"),
            signer_pb2.SignURLRequest(tenant=TENANT, uri="gs://nobucket/img/a.jpg"),
        ],
    ),
    "SignerService/SignURLs": _simple(
        "SignerService/SignURLs",
        _sign_urls,
        lambda w: [
            signer_pb2.SignURLsRequest(tenant=TENANT, mount_id=_mount_of(w), keys=["img/a", "x/b"])
        ],
    ),
    "SignerService/ListPrefix": _simple(
        "SignerService/ListPrefix",
        lambda w: [
            signer_pb2.ListPrefixRequest(
                tenant=TENANT, mount_id=m, page_size=2, sign_ttl_seconds=60
            )
            for m in w.mounts.values()
        ],
        lambda w: [
            signer_pb2.ListPrefixRequest(tenant=TENANT, mount_id=_mount_of(w), prefix="other/"),
            signer_pb2.ListPrefixRequest(
                tenant=TENANT, mount_id=_mount_of(w), page_token="bad" + w.canary
            ),
        ],
    ),
    "SignerService/CreateLink": _create_link,
    "SignerService/CreateLinks": _simple(
        "SignerService/CreateLinks",
        lambda w: [
            signer_pb2.CreateLinksRequest(
                tenant=TENANT, mount_id=m, keys=["img/1.jpg", "img/2.jpg"]
            )
            for m in w.mounts.values()
        ],
        lambda w: [
            signer_pb2.CreateLinksRequest(tenant=TENANT, mount_id=_mount_of(w), keys=["x/1.jpg"])
        ],
    ),
    "SignerService/RevokeLink": _revoke_link,
    "VaultService/RebindMount": _rebind,
    "VaultService/UpdateMount": _update_mount,
    "VaultService/DeleteMount": _delete_mount,
    "VaultService/RevokeCredential": _revoke,
    "AuditService/QueryAudit": _simple(
        "AuditService/QueryAudit",
        lambda w: [
            audit_pb2.QueryAuditRequest(tenant=TENANT),
            audit_pb2.QueryAuditRequest(tenant=""),
        ],
        lambda w: [audit_pb2.QueryAuditRequest(tenant=TENANT, limit=-1)],
    ),
    "AuditService/VerifyAudit": _simple(
        "AuditService/VerifyAudit",
        lambda w: [audit_pb2.VerifyAuditRequest(full=True)],
        lambda w: [],
    ),
    "AuditService/GetAuditKey": _simple(
        "AuditService/GetAuditKey",
        lambda w: [audit_pb2.GetAuditKeyRequest()],
        lambda w: [],
    ),
    "AuditService/ExportAudit": _simple(
        "AuditService/ExportAudit",
        lambda w: [audit_pb2.ExportAuditRequest()],
        lambda w: [],
    ),
}


def missing_cases() -> set[str]:
    """RPCs the descriptors declare that CASES does not drive."""
    return rpcs_in_descriptors() - set(CASES)


def run_all(d: Driver) -> None:
    """Setup, every case, then every RPC once without a token."""
    setup(d)
    for case in CASES.values():
        case(d)
    d.probe_unauthenticated()


# RPCs every authenticated principal may call with no input to get wrong: their failure
# path is the refusal without a token (probe_unauthenticated).
ONLY_UNAUTHENTICATED_FAILS = {"AuditService/GetAuditKey"}


def uncovered(d: Driver) -> dict[str, list[str]]:
    """RPCs that lack an OK call or a refused call by an authenticated principal."""
    out = {}
    for rpc in rpcs_in_descriptors():
        seen = d.outcomes.get(rpc, [])
        authed = [
            o for o in seen if rpc in ONLY_UNAUTHENTICATED_FAILS or not o.startswith("nobody:")
        ]
        if not any(o.endswith(":OK") for o in authed) or all(o.endswith(":OK") for o in authed):
            out[rpc] = seen
    return out


# Signing RPCs of the AZURE_SAS mount return the customer's SAS inside the URL: that is
# the credential's purpose, so its sig= is allowed there and nowhere else.
SIGNING = {"SignerService/SignURL", "SignerService/SignURLs", "SignerService/ListPrefix"}


def leaks(d: Driver) -> list[str]:
    """Where a form of the canary came back: responses, statuses, trailers, reprs."""
    forms = canary_forms(d.world.canary)
    sas_mount = d.world.mounts.get("AZURE_SAS", "-")
    out = []
    for rpc, mount_id, response in d.responses:
        data = response
        if rpc in SIGNING and mount_id == sas_mount:
            for sig in sas_signature_forms(d.world.canary):
                data = data.replace(sig, b"")
        if hits := found_in(data, forms):
            out.append(f"response of {rpc}: {hits}")
    for rpc, data in d.errors:
        if hits := found_in(data, forms):
            out.append(f"error of {rpc}: {hits}")
    return out


def scan_files(paths: Iterable[Path], forms: list[bytes]) -> dict[str, list[bytes]]:
    """File -> the forms of the canary in its raw bytes."""
    return {str(p): hits for p in paths if p.is_file() if (hits := found_in(p.read_bytes(), forms))}


def found_in(blob: bytes, forms: Iterable[bytes]) -> list[bytes]:
    """The forms of the canary that occur in blob."""
    return [f for f in forms if f in blob]


@contextlib.contextmanager
def driver(address: str, tokens: dict[str, str], world: World) -> Iterator[Driver]:
    d = Driver(address, tokens, world)
    try:
        yield d
    finally:
        d.close()
