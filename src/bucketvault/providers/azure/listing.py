"""ListPrefix through azure-storage-blob: one service page at a time, nothing accumulated."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobPrefix, ContainerClient

from bucketvault.models import ListEntry, ListPage, ListRequest
from bucketvault.providers.azure.translate import translate

MAX_PAGE_SIZE = 1000

# keys -> their signed GET URLs, same order (None when the caller did not ask for URLs).
UrlSigner = Callable[[Sequence[str]], list[str]]


def iter_pages(
    container: ContainerClient, request: ListRequest, sign: UrlSigner | None
) -> Iterator[ListPage]:
    """Yield ListPages lazily; page_token is Azure's continuation marker, opaque to callers."""
    size = max(1, min(request.page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE))
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
            if sign is not None and entries:
                urls = sign([e.key for e in entries])
                entries = [
                    ListEntry(e.key, e.size, e.etag, e.last_modified, url)
                    for e, url in zip(entries, urls, strict=True)
                ]
            yield ListPage(tuple(entries), tuple(prefixes), str(pager.continuation_token or ""))
    except AzureError as exc:
        raise translate(exc, "listing the container") from exc


__all__ = ["MAX_PAGE_SIZE", "UrlSigner", "iter_pages"]
