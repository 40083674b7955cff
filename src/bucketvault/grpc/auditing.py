"""What the transport tells a call's audit draft: the action an RPC is recorded as, and
the request fields every record carries (tenant, mount, credential, keys, method, TTL).

Read from the request before anything can fail, so that a call refused by authentication
or validation is recorded with what it asked for. Only these named, non-secret fields are
read: a sealed credential or a token never reaches the draft.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from bucketvault.audit.draft import AuditDraft
from bucketvault.audit.event import KeyList, bounded
from bucketvault.protoenums import short_name
from bucketvault.v1 import common_pb2

# "Service/Method" -> the action its records carry (the use cases record the same names).
ACTIONS = {
    "VaultService/GetRegistrationKey": "vault.registration_key",
    "VaultService/GetAwsTrustPolicy": "vault.trust_policy",
    "VaultService/RegisterCredential": "vault.register",
    "VaultService/GetCredential": "vault.get_credential",
    "VaultService/ListCredentials": "vault.list_credentials",
    "VaultService/RevokeCredential": "vault.revoke",
    "VaultService/CreateMount": "vault.create_mount",
    "VaultService/GetMount": "vault.get_mount",
    "VaultService/ListMounts": "vault.list_mounts",
    "VaultService/RebindMount": "vault.rebind_mount",
    "VaultService/CheckMount": "vault.check_mount",
    "VaultService/UpdateMount": "vault.update_mount",
    "VaultService/DeleteMount": "vault.delete_mount",
    "VaultService/GetOnboarding": "vault.onboarding",
    "SignerService/SignURL": "signer.sign",
    "SignerService/SignURLs": "signer.sign",
    "SignerService/ListPrefix": "signer.list",
    "SignerService/CreateLink": "link.create",
    "SignerService/CreateLinks": "link.create",
    "SignerService/RevokeLink": "link.revoke",
    "AuditService/QueryAudit": "audit.query",
    "AuditService/VerifyAudit": "audit.verify",
    "AuditService/GetAuditKey": "audit.key",
    "AuditService/ExportAudit": "audit.export",
}


# Full method name -> action: the transport serves a fixed set of methods.
_ACTION_OF: dict[str, str] = {}


def action_of(method: str) -> str:
    """The action of a full gRPC method name ("/bucketvault.v1.VaultService/GetMount")."""
    action = _ACTION_OF.get(method)
    if action is None:
        service, _, name = method.lstrip("/").partition("/")
        short = f"{service.rsplit('.', 1)[-1]}/{name}"
        action = ACTIONS.get(short, "rpc." + short)
        if len(_ACTION_OF) < 1024:  # unknown names cannot grow it without bound
            _ACTION_OF[method] = action
    return action


def _method_name(value: int) -> str:
    if value == common_pb2.METHOD_UNSPECIFIED:
        return ""
    try:
        return short_name(common_pb2.Method, value)
    except ValueError:
        return f"UNKNOWN({value})"


@dataclass(frozen=True)
class _Fields:
    """Which of the recorded fields one request type has (looked up once per type)."""

    text: tuple[str, ...]
    keys: bool
    key: bool
    uris: bool
    uri: bool
    ttl: str
    method: bool

    @classmethod
    def of(cls, request: Message) -> _Fields:
        names = request.DESCRIPTOR.fields_by_name
        ttl = next((n for n in ("ttl_seconds", "sign_ttl_seconds") if n in names), "")
        return cls(
            tuple(n for n in ("tenant", "mount_id", "credential_id") if n in names),
            "keys" in names,
            "key" in names,
            "uris" in names,
            "uri" in names,
            ttl,
            "method" in names,
        )


# Per request type: the descriptor walk cost more than reading the fields themselves.
_FIELDS: dict[str, _Fields] = {}


def draft_for(method: str, request: Message, request_id: str, peer: str) -> AuditDraft:
    """A call's draft from its method and request."""
    name = request.DESCRIPTOR.full_name
    has = _FIELDS.get(name)
    if has is None:
        has = _FIELDS[name] = _Fields.of(request)
    text = {n: bounded(getattr(request, n)) for n in has.text}
    keys: Sequence[str] = ()
    if has.keys:
        # The repeated field itself, not a copy: a batch holds up to 1000 keys.
        keys = getattr(request, "keys")  # noqa: B009 - a field only some requests have
    elif has.key:
        keys = (getattr(request, "key"),)  # noqa: B009
    # Signing by URI: the URIs as asked, until the use case notes the keys they name.
    if has.uris and not keys:
        keys = getattr(request, "uris")  # noqa: B009
    elif has.uri and keys == ("",) and getattr(request, "uri"):  # noqa: B009
        keys = (getattr(request, "uri"),)  # noqa: B009
    ttl = getattr(request, has.ttl) if has.ttl else 0
    return AuditDraft(
        request_id=request_id,
        action=action_of(method),
        peer=bounded(peer),
        tenant=text.get("tenant", ""),
        mount_id=text.get("mount_id", ""),
        credential_id=text.get("credential_id", ""),
        keys=KeyList.of(keys),
        method=_method_name(getattr(request, "method")) if has.method else "",  # noqa: B009
        requested_ttl_seconds=int(ttl),
    )


__all__ = ["ACTIONS", "action_of", "draft_for"]
