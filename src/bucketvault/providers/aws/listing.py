"""S3 API calls a handle makes with its credentials: region, listing, mount checks.

boto3 clients are built per (session key, region, endpoint) and cached: building one
costs tens of milliseconds, using one from many threads is safe. botocore errors are
translated here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from bucketvault.errors import (
    BucketVaultError,
    NotFound,
    Unavailable,
)
from bucketvault.models import CheckResult, ListPage, ListRequest, MountState
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.errors import check_failure, header, list_error, transport_error
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.providers.egress import Egress
from bucketvault.providers.s3listing import client_error_code, list_objects_v2

_CLIENT_CACHE_LIMIT = 32


@dataclass(frozen=True)
class S3Location:
    """A bucket as the S3 API sees it: region and optional custom endpoint."""

    bucket: str
    region: str
    endpoint: str


class S3Clients:
    """Builds and caches boto3 S3 clients for a handle's credentials."""

    def __init__(
        self,
        make_session: Callable[[AwsCredentials], boto3.Session],
        egress: Egress,
        settings: AwsSettings | None = None,
    ) -> None:
        self._make_session = make_session
        self._egress = egress
        self._settings = settings or AwsSettings()
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str, str], Any] = {}

    def get(self, credentials: AwsCredentials, region: str, endpoint: str) -> Any:
        """A client signing with these credentials for this region and endpoint."""
        slot = (credentials.access_key_id, region, endpoint)
        with self._lock:
            client = self._clients.get(slot)
            if client is None:
                if len(self._clients) >= _CLIENT_CACHE_LIMIT:
                    # Entries of rotated sessions are never used again.
                    self._clients.clear()
                s3_config: dict[str, str] = {"addressing_style": "path"} if endpoint else {}
                client = self._make_session(credentials).client(
                    "s3",
                    region_name=region,
                    endpoint_url=endpoint or None,
                    config=Config(
                        signature_version="s3v4",
                        s3=s3_config,  # type: ignore[arg-type]
                    ).merge(self._settings.s3_config()),
                )
                self._clients[slot] = client = self._egress.guard_boto(client)
            return client

    def clear(self) -> None:
        """Drop every client."""
        with self._lock:
            self._clients.clear()


def bucket_region(client: Any, bucket: str) -> str:
    """The bucket's region from HeadBucket's x-amz-bucket-region ("" if not said)."""
    try:
        response = client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        # AWS names the region even on 301/403 answers.
        region = header(exc, "x-amz-bucket-region")
        if region:
            return region
        code = client_error_code(exc)
        if code in ("404", "NoSuchBucket"):
            raise NotFound(f"bucket {bucket!r} does not exist", reason="BUCKET_NOT_FOUND") from exc
        return ""
    except BotoCoreError as exc:
        raise Unavailable(
            f"S3 could not be reached to find the region of bucket {bucket!r}",
            reason="S3_UNAVAILABLE",
        ) from exc
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(headers.get("x-amz-bucket-region", ""))


def list_pages(client: Any, bucket: str, request: ListRequest) -> Iterator[ListPage]:
    """ListObjectsV2 page by page; next_page_token is S3's continuation token."""
    return list_objects_v2(
        client, bucket, request, lambda exc: list_error(exc, bucket), _unreachable(bucket)
    )


def _unreachable(bucket: str) -> Callable[[Exception], BucketVaultError]:
    def error(exc: Exception) -> BucketVaultError:
        return transport_error(exc, bucket)

    return error


def check_bucket(client: Any, location: S3Location, prefix: str) -> CheckResult:
    """List one key under the prefix, HeadBucket; map failures to mount states."""
    bucket = location.bucket
    try:
        # Listing first: HEAD answers carry no error body, a listing's says why.
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        if not prefix:
            # HeadBucket is s3:ListBucket without an s3:prefix: a session scoped to a
            # prefix is refused it by its own policy, and the listing proved as much.
            client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        return check_failure(exc, location.bucket, location.region)
    except EndpointConnectionError as exc:
        where = location.endpoint or f"S3 in {location.region}"
        return CheckResult(
            MountState.MISCONFIGURED,
            "ENDPOINT_UNREACHABLE",
            f"could not connect to {where} ({type(exc).__name__}): check the mount's endpoint",
        )
    except BotoCoreError as exc:
        return CheckResult(
            MountState.MISCONFIGURED,
            "ENDPOINT_UNREACHABLE",
            f"S3 did not answer properly ({type(exc).__name__}): check the mount's endpoint",
        )
    return CheckResult(MountState.AVAILABLE, "OK", f"bucket {bucket!r} is readable")


__all__ = [
    "S3Clients",
    "S3Location",
    "bucket_region",
    "check_bucket",
    "list_pages",
]
