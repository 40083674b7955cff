"""ListPrefix for HMAC mounts through the XML API's S3 interoperability.

GCS accepts S3 ListObjectsV2 signed with SigV4 by an HMAC key (region "auto"), which
is what boto3 does with an endpoint override. One boto3 client per endpoint and
handle (boto3 clients are thread-safe once built).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config

from bucketvault.errors import BucketVaultError
from bucketvault.models import ListPage, ListRequest
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs.errors import ListTarget, interop_error, transport_error
from bucketvault.providers.gcs.settings import GcsSettings
from bucketvault.providers.s3listing import list_objects_v2


def _config(settings: GcsSettings) -> Config:
    # total_max_attempts counts the first attempt (botocore's max_attempts does not).
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
    )


class InteropLister:
    """Lists with ListObjectsV2, signed with the handle's HMAC key."""

    def __init__(
        self, access_id: str, secret: str, egress: Egress, settings: GcsSettings | None = None
    ) -> None:
        self._egress = egress
        self._config = _config(settings or GcsSettings())
        self._access_id = access_id
        self._secret = secret
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"InteropLister(access_id={self._access_id!r})"

    def _client(self, endpoint: str) -> Any:
        with self._lock:
            client = self._clients.get(endpoint)
            if client is None:
                # A private botocore session: no profile or shared config of the host leaks in.
                session = boto3.session.Session(
                    aws_access_key_id=self._access_id,
                    aws_secret_access_key=self._secret,
                    region_name="auto",
                )
                client = self._egress.guard_boto(
                    session.client("s3", endpoint_url=endpoint, config=self._config)
                )
                self._clients[endpoint] = client
            return client

    def pages(self, target: ListTarget, request: ListRequest) -> Iterator[ListPage]:
        """Every page from request.page_token on, lazily."""

        def unreachable(exc: Exception) -> BucketVaultError:
            return transport_error(exc, target)

        return list_objects_v2(
            self._client(target.endpoint),
            target.bucket,
            request,
            lambda exc: interop_error(exc, target),
            unreachable,
        )

    def close(self) -> None:
        """Drop the clients and the secret."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            self._secret = ""


__all__ = ["InteropLister"]
