"""Stable links: tokens that name an object (or a prefix) of a mount, authenticated by a
service key, and the cache of revoked ones. The use cases live in app/links.py, the HTTP
listener that opens them in bucketvault.http."""

from bucketvault.links.revocations import Revocations
from bucketvault.links.tokens import LINK_ID, LinkClaims, LinkCodec

__all__ = ["LINK_ID", "LinkClaims", "LinkCodec", "Revocations"]
