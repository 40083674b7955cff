"""ListPrefix streams: the caller has page 1 while the cloud's listing is still running.

A stand-in S3 speaking ListObjectsV2 XML serves page 1 at once, then holds page 2 until
the test says its client has received page 1. A server that gathered the listing before
answering would wait on page 2 first, so the stand-in's hold would time out and the test
sees page 2 served before page 1 arrived. The SDK iterator sends nothing until iterated.
The read-ahead the rules put under every listing is checked on its own below: an error
reaches the caller where its page would have been, and closing the stream stops it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from bucketvault import errors
from bucketvault.models import ListEntry, ListPage
from bucketvault.providers.rules import read_ahead
from bucketvault.testing.loopback import LoopbackServer, StandInHandler
from bucketvault.testing.server import start_server

BUCKET = "stream-bucket"
# Long enough that a gathering server is caught, short enough to fail fast.
HOLD_SECONDS = 20.0


def _page(keys: list[str], next_token: str) -> bytes:
    contents = "".join(
        f"<Contents><Key>{k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        f'<ETag>"e"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>'
        for k in keys
    )
    more = f"<NextContinuationToken>{next_token}</NextContinuationToken>" if next_token else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>{BUCKET}</Name><Prefix></Prefix><KeyCount>{len(keys)}</KeyCount>"
        f"<MaxKeys>1000</MaxKeys><IsTruncated>{'true' if next_token else 'false'}</IsTruncated>"
        f"{contents}{more}</ListBucketResult>"
    ).encode()


PAGE_1 = [f"img/{i:03d}.jpg" for i in range(3)]
PAGE_2 = [f"img/{i:03d}.jpg" for i in range(3, 5)]


class HeldS3(StandInHandler):
    """Page 1 at once; page 2 once the test sets `received` (or the hold runs out)."""

    received: ClassVar[threading.Event]
    # Whether page 2 left only after the client had page 1, per page-2 request.
    page2_after_page1: ClassVar[list[bool]]
    requests: ClassVar[int]

    def do_GET(self) -> None:
        type(self).requests += 1
        query = parse_qs(urlsplit(self.path).query)
        if "list-type" not in query:
            self.reply(404, b"")
            return
        if "continuation-token" not in query:
            self.reply(200, _page(PAGE_1, "token-2"), "application/xml")
            return
        released = self.received.wait(HOLD_SECONDS)
        self.page2_after_page1.append(released)
        self.reply(200, _page(PAGE_2, ""), "application/xml")


@pytest.fixture
def held_s3() -> Iterator[LoopbackServer]:
    HeldS3.received = threading.Event()
    HeldS3.page2_after_page1 = []
    HeldS3.requests = 0
    server = LoopbackServer(HeldS3)
    try:
        yield server
    finally:
        HeldS3.received.set()
        server.close()


@pytest.mark.parametrize("sign_ttl", [0, 600])
def test_first_page_arrives_before_the_cloud_listing_ends(
    tmp_path: Path, held_s3: LoopbackServer, sign_ttl: int
) -> None:
    with start_server(tmp_path) as srv:
        admin = srv.client()
        cred = admin.register_credential(
            "acme",
            "S3_ACCESS_KEY",
            {
                "access_key_id": "AKIDSTREAM",
                "secret_access_key": "stream/secret",
                "endpoint_url": held_s3.url,
            },
        )
        mount = admin.create_mount(
            "acme",
            name="stream",
            bucket=BUCKET,
            credential_id=cred.credential_id,
            region="us-east-1",
            max_ttl_seconds=3600,
            allowed_methods=("GET",),
        )
        HeldS3.requests = 0  # whatever creating the mount asked S3 is not the listing
        pages = admin.list_prefix("acme", mount.mount_id, sign_ttl_seconds=sign_ttl)
        # The SDK iterator is lazy: nothing has reached the server, let alone S3.
        assert HeldS3.requests == 0
        first = next(pages)
        assert [e.key for e in first.entries] == PAGE_1
        assert HeldS3.page2_after_page1 == []
        assert all(bool(e.url) == bool(sign_ttl) for e in first.entries)
        HeldS3.received.set()
        rest = list(pages)
    assert [e.key for p in rest for e in p.entries] == PAGE_2
    assert HeldS3.page2_after_page1 == [True]


def _pages(count: int, pulled: list[int], fail_at: int = -1) -> Iterator[ListPage]:
    for i in range(count):
        pulled.append(i)
        if i == fail_at:
            raise errors.Unavailable("S3 went away", reason="S3_UNAVAILABLE")
        entry = ListEntry(key=f"k{i}", size=0, etag="", last_modified=None)
        yield ListPage((entry,), (), f"t{i + 1}" if i + 1 < count else "")


def test_read_ahead_yields_the_same_pages_in_order() -> None:
    pulled: list[int] = []
    keys = [p.entries[0].key for p in read_ahead(_pages(5, pulled))]
    assert keys == ["k0", "k1", "k2", "k3", "k4"]


def test_read_ahead_raises_the_clouds_error_where_its_page_would_be() -> None:
    pulled: list[int] = []
    got: list[str] = []
    with pytest.raises(errors.Unavailable) as caught:
        for page in read_ahead(_pages(5, pulled, fail_at=2)):
            got.append(page.entries[0].key)
    assert got == ["k0", "k1"]
    assert caught.value.reason == "S3_UNAVAILABLE"


def test_closing_the_stream_stops_the_read_ahead() -> None:
    pulled: list[int] = []
    stream = read_ahead(_pages(1000, pulled))
    assert next(stream).entries[0].key == "k0"
    stream.close()
    for thread in threading.enumerate():
        if thread.name == "list-read-ahead":
            thread.join(timeout=10)
            assert not thread.is_alive()
    # One page sent, one waiting, one fetched while the hand-over was refused.
    assert len(pulled) <= 3
