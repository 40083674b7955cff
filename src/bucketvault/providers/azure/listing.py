"""ListPrefix through azure-storage-blob: one service page at a time, nothing accumulated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobPrefix, ContainerClient

from bucketvault.models import ListEntry, ListPage, ListRequest
from bucketvault.providers.azure.errors import translate


def iter_pages(container: ContainerClient, request: ListRequest) -> Iterator[ListPage]:
    """Yield ListPages lazily; page_token is Azure's continuation marker, opaque to callers."""
    size = request.page_size
    prefix = request.prefix or None
    token = request.page_token or None
    try:
        pager: Any
        if request.delimiter:
            pager = container.walk_blobs(
                name_starts_with=prefix, delimiter=request.delimiter, results_per_page=size
            ).by_page(continuation_token=token)
        else:
            pager = container.list_blobs(name_starts_with=prefix, results_per_page=size).by_page(
                continuation_token=token
            )
        pages = iter(pager)
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            entries: list[ListEntry] = []
            prefixes: list[str] = []
            for item in page:
                if isinstance(item, BlobPrefix):
                    prefixes.append(item.name)
                else:
                    entries.append(
                        ListEntry(
                            key=item.name,
                            size=int(item.size or 0),
                            etag=str(item.etag or ""),
                            last_modified=item.last_modified,
                        )
                    )
            yield ListPage(tuple(entries), tuple(prefixes), str(pager.continuation_token or ""))
    except AzureError as exc:
        raise translate(exc, "listing the container") from exc


__all__ = ["iter_pages"]
