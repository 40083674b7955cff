"""Signing by object URI (SignURL.uri, SignURLs.uris) and ListPrefix's own page tokens,
through the real server with in-process providers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from core.policy_support import policy_server
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.cli.main import main
from bucketvault.client import BucketVaultClient
from bucketvault.providers.aws.uris import parse_object_uri as s3_uri
from bucketvault.providers.azure.uris import parse_object_uri as az_uri
from bucketvault.providers.gcs.uris import parse_object_uri as gs_uri
from bucketvault.providers.uris import ObjectUri
from bucketvault.testing.server import RunningServer

KEYS = (*(f"photos/{i:02}.jpg" for i in range(7)), "docs/a.txt", "docs/b.txt")
# One scoped signer: only the mount "deep", so "all" (same bucket, shorter prefix) is
# invisible to its resolution.
ENTRIES = [
    {
        "name": "deep-only",
        "roles": ["signer"],
        "grants": [{"tenant": "acme", "mounts": ["deep"]}],
    },
    {
        "name": "shallow-only",
        "roles": ["signer"],
        "grants": [{"tenant": "acme", "mounts": ["all"]}],
    },
]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b/k/x.jpg", ObjectUri("b", "k/x.jpg")),
        ("s3://b/a%20b", ObjectUri("b", "a%20b")),
        ("https://b.s3.amazonaws.com/k/a%20b.jpg", ObjectUri("b", "k/a b.jpg")),
        ("https://my.bucket.s3.eu-west-1.amazonaws.com/k", ObjectUri("my.bucket", "k")),
        ("https://b.s3-us-west-2.amazonaws.com/k", ObjectUri("b", "k")),
        ("https://b.s3.dualstack.us-east-1.amazonaws.com/k", ObjectUri("b", "k")),
        ("https://s3.amazonaws.com/b/k/x", ObjectUri("b", "k/x")),
        ("https://s3.us-east-2.amazonaws.com/b/k?versionId=1", ObjectUri("b", "k")),
        ("https://s3.cn-north-1.amazonaws.com.cn/b/k", ObjectUri("b", "k")),
        ("https://s3.amazonaws.com/b", ObjectUri("b", "")),
        ("gs://b/k", None),
        ("https://evil.example/b.s3.amazonaws.com/k", None),
        ("https://b.s3.amazonaws.com.evil.example/k", None),
        ("https://s3.amazonaws.com:8443/b/k", None),
        ("s3:///k", None),
    ],
)
def test_s3_uris(uri: str, expected: ObjectUri | None) -> None:
    assert s3_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://b/k/x", ObjectUri("b", "k/x")),
        ("https://storage.googleapis.com/b/k/a%2Bb", ObjectUri("b", "k/a+b")),
        ("https://storage.cloud.google.com/b/k", ObjectUri("b", "k")),
        ("https://b.storage.googleapis.com/k", ObjectUri("b", "k")),
        ("https://storage.googleapis.com.evil.example/b/k", None),
        ("s3://b/k", None),
    ],
)
def test_gcs_uris(uri: str, expected: ObjectUri | None) -> None:
    assert gs_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("az://acct/c/k/x", ObjectUri("c", "k/x", "acct")),
        ("https://ACCT.blob.core.windows.net/c/k%20x", ObjectUri("c", "k x", "acct")),
        ("https://acct.blob.core.windows.net/", None),
        ("https://blob.core.windows.net/c/k", None),
        ("az://acct", None),
        ("gs://c/k", None),
    ],
)
def test_azure_uris(uri: str, expected: ObjectUri | None) -> None:
    assert az_uri(uri) == expected


@dataclass(frozen=True)
class World:
    server: RunningServer
    admin: BucketVaultClient
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with policy_server(tmp_path_factory.mktemp("uri"), ENTRIES, keys=KEYS) as server:
        admin = server.client()
        gcs = admin.register_credential("acme", "GCS_HMAC", sample("GCS_HMAC")).credential_id
        s3 = admin.register_credential("acme", "S3_ACCESS_KEY", sample("S3_ACCESS_KEY"))
        azure = admin.register_credential("acme", "AZURE_SAS", sample("AZURE_SAS"))
        other = admin.register_credential("globex", "GCS_HMAC", sample("GCS_HMAC"))
        ids: dict[str, str] = {}
        for tenant, name, bucket, prefix, cred in (
            ("acme", "all", "b", "", gcs),
            ("acme", "deep", "b", "photos/", gcs),
            ("acme", "dup1", "b", "dup/", gcs),
            ("acme", "dup2", "b", "dup/", gcs),
            ("acme", "s3", "b", "", s3.credential_id),
            ("acme", "blob", "b", "", azure.credential_id),
            ("globex", "theirs", "only-globex", "", other.credential_id),
        ):
            mount = admin.create_mount(
                tenant,
                name=name,
                bucket=bucket,
                prefix=prefix,
                credential_id=cred,
                allowed_methods=["GET", "PUT"],
            )
            ids[name] = mount.mount_id
        yield World(server, admin, ids)


@pytest.mark.parametrize(
    ("uri", "mount", "key"),
    [
        ("gs://b/photos/01.jpg", "deep", "photos/01.jpg"),
        ("https://storage.googleapis.com/b/photos/a%20b.jpg", "deep", "photos/a b.jpg"),
        ("gs://b/docs/a.txt", "all", "docs/a.txt"),
        ("s3://b/photos/01.jpg", "s3", "photos/01.jpg"),
        ("https://b.s3.us-east-1.amazonaws.com/docs/a.txt", "s3", "docs/a.txt"),
        ("az://acct/b/photos/01.jpg", "blob", "photos/01.jpg"),
        ("https://acct.blob.core.windows.net/b/x", "blob", "x"),
    ],
)
def test_a_uri_resolves_to_the_longest_prefix_of_its_cloud(
    world: World, uri: str, mount: str, key: str
) -> None:
    signed = world.admin.sign_url("acme", uri=uri, ttl_seconds=60)
    assert signed.mount_id == world.ids[mount]
    assert signed.key == key and signed.url


def test_resolution_answers(world: World) -> None:
    c = world.admin
    for uri in ("s3://nobucket/k", "az://otheracct/b/k", "gs://only-globex/k"):
        with pytest.raises(errors.NotFound) as nf:
            c.sign_url("acme", uri=uri)
        assert (nf.value.reason, nf.value.field) == ("NO_MOUNT_FOR_URI", "uri")
    # The failure is recorded with the URI asked for.
    failed = [r for r in c.query_audit("acme", action="signer.sign") if r.outcome != "ok"]
    assert failed[-1].reason == "NO_MOUNT_FOR_URI" and list(failed[-1].keys) == [uri]
    with pytest.raises(errors.FailedPrecondition) as amb:
        c.sign_url("acme", uri="gs://b/dup/x")
    assert amb.value.reason == "AMBIGUOUS_MOUNT"
    for uri in ("ftp://b/k", "gs://b/", "s3://b"):
        with pytest.raises(errors.InvalidArgument) as bad:
            c.sign_url("acme", uri=uri)
        assert bad.value.reason == "INVALID_URI"
    with pytest.raises(errors.InvalidArgument) as both:
        c.sign_url("acme", world.ids["all"], uri="gs://b/k")
    assert (both.value.reason, both.value.field) == ("INVALID_FIELD", "uri")
    # The key is still checked as under mount_id + key.
    with pytest.raises(errors.InvalidArgument) as key:
        c.sign_url("acme", uri="gs://b/photos/../x")
    assert key.value.reason == "INVALID_KEY"


def test_a_batch_of_uris_signs_on_one_mount(world: World) -> None:
    c = world.admin
    uris = ["gs://b/photos/01.jpg", "https://storage.googleapis.com/b/photos/02.jpg"]
    urls = c.sign_urls("acme", "", (), uris=uris, ttl_seconds=60)
    assert [u.key for u in urls] == ["photos/01.jpg", "photos/02.jpg"]
    by_id = c.sign_urls("acme", world.ids["deep"], ["photos/01.jpg"], ttl_seconds=60)
    assert by_id[0].url == urls[0].url
    with pytest.raises(errors.InvalidArgument) as span:
        c.sign_urls("acme", "", (), uris=["gs://b/photos/01.jpg", "gs://b/docs/a.txt"])
    assert (span.value.reason, span.value.field) == ("URIS_SPAN_MOUNTS", "uris[1]")
    ok = [
        r
        for r in c.query_audit("acme", action="signer.sign")
        if r.detail.get("by_uri") == "true" and r.key_count == 2
    ]
    assert ok and ok[-1].mount_id == world.ids["deep"]
    assert list(ok[-1].keys) == ["photos/01.jpg", "photos/02.jpg"]


def test_resolution_shows_only_granted_mounts(world: World) -> None:
    deep_only = world.server.client(world.server.tokens["deep-only"])
    # "deep" holds the key: allowed, and it is the one the caller may use.
    assert deep_only.sign_url("acme", uri="gs://b/photos/01.jpg").mount_id == world.ids["deep"]
    # Only "all" holds docs/: outside the grants, it is absent.
    with pytest.raises(errors.NotFound) as nf:
        deep_only.sign_url("acme", uri="gs://b/docs/a.txt")
    assert nf.value.reason == "NO_MOUNT_FOR_URI"
    # "deep" is longer but not granted: the caller's own mount signs.
    shallow = world.server.client(world.server.tokens["shallow-only"])
    assert shallow.sign_url("acme", uri="gs://b/photos/01.jpg").mount_id == world.ids["all"]
    # Another tenant's buckets are never candidates, and a tenant outside the grants is
    # refused before any lookup.
    with pytest.raises(errors.PermissionDenied):
        deep_only.sign_url("globex", uri="gs://only-globex/k")


def test_page_tokens_are_ours_and_bound_to_the_listing(world: World) -> None:
    c = world.admin
    deep = world.ids["deep"]
    pages = list(c.list_prefix("acme", deep, page_size=2))
    # The local providers list every key of KEYS under the mount's prefix.
    assert [len(p.entries) for p in pages] == [2, 2, 2, 2, 1]
    token = pages[0].next_page_token
    assert token.startswith("v1.") and pages[-1].next_page_token == ""
    # Resuming from a token gives the rest, and every token of the walk works.
    rest = list(c.list_prefix("acme", deep, page_size=2, page_token=token))
    assert [e.key for p in rest for e in p.entries] == [e.key for p in pages[1:] for e in p.entries]
    assert [p.next_page_token != "" for p in rest] == [True, True, True, False]
    bad = [
        "2",  # the cloud's own token: never passed through
        token[:-2] + ("AA" if not token.endswith("AA") else "BA"),
        token.replace("v1.", "v2.", 1),
        token + ".x",
        "v1.pk_0000000000000000.Mg.AAAA",
    ]
    for forged in bad:
        with pytest.raises(errors.InvalidArgument) as exc:
            list(c.list_prefix("acme", deep, page_size=2, page_token=forged))
        assert (exc.value.reason, exc.value.field) == ("INVALID_PAGE_TOKEN", "page_token")
    # Valid, but for another listing: another mount, prefix, delimiter, tenant.
    elsewhere = [
        ("acme", world.ids["all"], {}),
        ("acme", deep, {"prefix": "photos/0"}),
        ("acme", deep, {"delimiter": "/"}),
        ("globex", world.ids["theirs"], {}),
    ]
    for tenant, mount_id, kw in elsewhere:
        with pytest.raises(errors.InvalidArgument) as exc:
            list(c.list_prefix(tenant, mount_id, page_size=2, page_token=token, **kw))  # type: ignore[arg-type]
        assert exc.value.reason == "INVALID_PAGE_TOKEN"
    failed = next(iter(c.query_audit("globex", action="signer.list", limit=1)))
    assert failed.outcome != "OK"


def test_the_cli_signs_by_uri_one_or_a_batch(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bucketvault sign` without --mount takes object URIs, alone or in a --batch file."""
    server = world.server
    base = ["--address", server.address, "--token-file", str(server.data_dir / "admin.token")]
    code = main([*base, "--json", "sign", "--tenant", "acme", "gs://b/photos/01.jpg"])
    out, _ = capsys.readouterr()
    assert code == 0
    signed = json.loads(out)
    assert (signed["mount_id"], signed["key"]) == (world.ids["deep"], "photos/01.jpg")

    batch = tmp_path / "uris.txt"
    batch.write_text("gs://b/photos/02.jpg\ngs://b/photos/03.jpg\n")
    code = main([*base, "--json", "sign", "--tenant", "acme", "--batch", str(batch)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert [s["key"] for s in json.loads(out)] == ["photos/02.jpg", "photos/03.jpg"]

    # A plain key without --mount is a usage error; an unmounted bucket is NOT_FOUND (3).
    assert main([*base, "sign", "--tenant", "acme", "photos/01.jpg"]) == 2
    assert main([*base, "sign", "--tenant", "acme", "gs://nobody/x.jpg"]) == 3
    _, err = capsys.readouterr()
    assert "NO_MOUNT_FOR_URI" in err
