"""ListObjectsV2 paging over a boto3 S3 client, for AWS and for GCS's XML interop API.

Both clouds answer the same S3 XML listing; only how their errors read differs, so the
caller passes its own translation. One request per page, yielded as it arrives, so
memory stays constant however many objects the prefix holds. The page token is the
store's own continuation token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bucketvault.errors import BucketVaultError
from bucketvault.models import ListEntry, ListPage, ListRequest

# (the client's error) -> ours; (a transport failure) -> ours.
OnClientError = Callable[[ClientError], BucketVaultError]
OnTransportError = Callable[[Exception], BucketVaultError]


def list_objects_v2(
    client: Any,
    bucket: str,
    request: ListRequest,
    on_client_error: OnClientError,
    on_transport_error: OnTransportError,
) -> Iterator[ListPage]:
    """Every page from request.page_token on, lazily (page_size already clamped by the core)."""
    token = request.page_token
    while True:
        params: dict[str, Any] = {"Bucket": bucket, "MaxKeys": request.page_size}
        if request.prefix:
            params["Prefix"] = request.prefix
        if request.delimiter:
            params["Delimiter"] = request.delimiter
        if token:
            params["ContinuationToken"] = token
        try:
            body = client.list_objects_v2(**params)
        except ClientError as exc:
            raise on_client_error(exc) from exc
        except (BotoCoreError, ValueError) as exc:
            raise on_transport_error(exc) from exc
        entries = tuple(
            ListEntry(
                key=str(item["Key"]),
                size=int(item.get("Size", 0)),
                etag=str(item.get("ETag", "")),
                last_modified=item.get("LastModified"),
            )
            for item in body.get("Contents", ())
        )
        prefixes = tuple(str(p["Prefix"]) for p in body.get("CommonPrefixes", ()))
        token = str(body.get("NextContinuationToken", "")) if body.get("IsTruncated") else ""
        yield ListPage(entries, prefixes, token)
        if not token:
            return


def client_error_code(exc: ClientError) -> str:
    """The S3 error code, or the HTTP status when the answer had no body (HEAD)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code if code and not code.isdigit() else str(status)


__all__ = ["client_error_code", "list_objects_v2"]
