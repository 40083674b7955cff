"""Translation of the link RPCs' messages (CreateLink, CreateLinks, RevokeLink)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bucketvault.app import IssuedLink, LinkInput, LinksInput
from bucketvault.errors import InvalidArgument
from bucketvault.grpc.convert import method_from_pb, method_to_pb, ts
from bucketvault.models import Method
from bucketvault.store.base import LinkRevocation
from bucketvault.v1 import signer_pb2


def _methods(values: Iterable[int]) -> frozenset[Method]:
    methods = set()
    for value in values:
        method = method_from_pb(value, "methods")
        if method is None:
            raise InvalidArgument("unknown method", reason="INVALID_FIELD", field="methods")
        methods.add(method)
    return frozenset(methods)


def link_input(request: signer_pb2.CreateLinkRequest) -> LinkInput:
    return LinkInput(
        tenant=request.tenant,
        mount_id=request.mount_id,
        key=request.key,
        prefix=request.prefix,
        whole_prefix=request.whole_prefix,
        methods=_methods(request.methods),
        expires_in_seconds=request.expires_in_seconds,
    )


def links_input(request: signer_pb2.CreateLinksRequest) -> LinksInput:
    return LinksInput(
        tenant=request.tenant,
        mount_id=request.mount_id,
        keys=tuple(request.keys),
        methods=_methods(request.methods),
        expires_in_seconds=request.expires_in_seconds,
    )


def link_to_pb(link: IssuedLink) -> signer_pb2.Link:
    return signer_pb2.Link(
        link_id=link.link_id,
        url=link.url,
        mount_id=link.mount_id,
        key=link.key,
        prefix=link.prefix,
        methods=[method_to_pb(m) for m in sorted(link.methods, key=lambda m: m.value)],
        expires_at=ts(link.expires_at),
    )


def links_to_pb(links: Sequence[IssuedLink]) -> signer_pb2.CreateLinksResponse:
    return signer_pb2.CreateLinksResponse(links=[link_to_pb(link) for link in links])


def revocation_to_pb(revocation: LinkRevocation) -> signer_pb2.RevokeLinkResponse:
    return signer_pb2.RevokeLinkResponse(
        link_id=revocation.link_id, revoked_at=ts(revocation.revoked_at)
    )


__all__ = ["link_input", "link_to_pb", "links_input", "links_to_pb", "revocation_to_pb"]
