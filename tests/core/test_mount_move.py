"""Moving a mount across clouds through the real server: S3 (moto) -> GCS (fake-gcs-server)
-> Azure Blob (Azurite), one compare-and-swap RebindMount each. The same mount id and key
sign a URL that fetches the object from the cloud the mount is on now, and a stable link
made before the first move follows it. Each cloud holds the same key with bytes naming the
cloud, so a URL still pointing at the old cloud fails the test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from azure.storage.blob import BlobServiceClient
from core.secrets_fixtures import rsa_pem

from bucketvault import errors
from bucketvault.client import BucketVaultClient
from bucketvault.testing.emulators import required, start_azurite, start_fake_gcs
from bucketvault.testing.server import start_server
from bucketvault.v1 import vault_pb2

pytestmark = [pytest.mark.moto, pytest.mark.gcs, pytest.mark.azurite]

KEY = "img/cat.jpg"
BUCKET = "move-bucket"
AZURE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, in Microsoft's documentation).
AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class Clouds:
    s3: str
    gcs: str
    azure: str  # the account URL


def _body(cloud: str) -> bytes:
    return f"the cat, served by {cloud}".encode()


@pytest.fixture(scope="module")
def clouds(moto_url: str) -> Iterator[Clouds]:
    with required(start_fake_gcs()) as gcs, required(start_azurite()) as azurite:
        s3 = boto3.client(
            "s3",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=_body("s3"))
        s3.close()
        with requests.Session() as s:
            s.post(
                f"{gcs.url}/storage/v1/b", params={"project": "p"}, json={"name": BUCKET}
            ).raise_for_status()
            s.post(
                f"{gcs.url}/upload/storage/v1/b/{BUCKET}/o",
                params={"uploadType": "media", "name": KEY},
                data=_body("gcs"),
                headers={"Content-Type": "application/octet-stream"},
                timeout=10,
            ).raise_for_status()
        account_url = f"{azurite.url}/{AZURE_ACCOUNT}"
        blobs = BlobServiceClient(
            account_url, credential={"account_name": AZURE_ACCOUNT, "account_key": AZURE_KEY}
        )
        blobs.create_container(BUCKET).upload_blob(KEY, _body("azure"))
        blobs.close()
        yield Clouds(moto_url, gcs.url, account_url)


def _fetch(c: BucketVaultClient, mount_id: str) -> tuple[str, bytes]:
    """(host of the URL, bytes it fetches) for the mount's KEY."""
    signed = c.sign_url("acme", mount_id, KEY, ttl_seconds=300)
    got = requests.get(signed.url, timeout=10)
    assert got.status_code == 200, (signed.url, got.status_code)
    return urlsplit(signed.url).netloc, got.content


def test_one_mount_moves_s3_gcs_azure_and_its_references_follow(
    tmp_path: Path, clouds: Clouds
) -> None:
    env = {"BUCKETVAULT_HTTP_LISTEN": "127.0.0.1:0"}
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        s3 = c.register_credential(
            "acme",
            "S3_ACCESS_KEY",
            {
                "access_key_id": "AKIAMOVEEXAMPLE00001",
                "secret_access_key": "move-s3-secret",
                "endpoint_url": clouds.s3,
                "region": "us-east-1",
            },
        )
        gcs = c.register_credential(
            "acme",
            "GCS_SERVICE_ACCOUNT",
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "k1",
                "private_key": rsa_pem(),
                "client_email": "signer@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            },
        )
        azure = c.register_credential(
            "acme",
            "AZURE_SHARED_KEY",
            {"account_url": clouds.azure, "account_name": AZURE_ACCOUNT, "account_key": AZURE_KEY},
        )
        mount = c.create_mount(
            "acme", name="photos", bucket=BUCKET, prefix="img/", credential_id=s3.credential_id
        )
        link = c.create_link("acme", mount.mount_id, KEY)
        s3_host, body = _fetch(c, mount.mount_id)
        assert body == _body("s3")
        assert requests.get(link.url, timeout=10).content == _body("s3")

        # Checked before the move, as ops would: nothing is written by the check.
        check = c.check_new_mount(
            "acme", credential_id=s3.credential_id, bucket=BUCKET, prefix="img/"
        )
        assert check.state == vault_pb2.CheckMountResponse.STATE_AVAILABLE, check
        missing = c.check_new_mount("acme", credential_id=s3.credential_id, bucket="nope")
        assert missing.state == vault_pb2.CheckMountResponse.STATE_NOT_FOUND, missing
        assert [m.mount_id for m in c.list_mounts("acme")] == [mount.mount_id]

        # Without a location, another cloud's credential is still refused.
        with pytest.raises(errors.FailedPrecondition) as exc:
            c.rebind_mount("acme", mount.mount_id, gcs.credential_id, mount.version)
        assert exc.value.reason == "KIND_MISMATCH"

        to_gcs = c.rebind_mount(
            "acme",
            mount.mount_id,
            gcs.credential_id,
            mount.version,
            bucket=BUCKET,
            prefix="img/",
            endpoint=clouds.gcs,
        )
        assert (to_gcs.mount_id, to_gcs.credential_id) == (mount.mount_id, gcs.credential_id)
        assert (to_gcs.bucket, to_gcs.prefix, to_gcs.endpoint) == (BUCKET, "img/", clouds.gcs)
        gcs_host, body = _fetch(c, mount.mount_id)
        assert body == _body("gcs") and gcs_host != s3_host
        assert requests.get(link.url, timeout=10).content == _body("gcs")

        to_azure = c.rebind_mount(
            "acme",
            mount.mount_id,
            azure.credential_id,
            to_gcs.version,
            bucket=BUCKET,
            prefix="img/",
        )
        assert to_azure.version == to_gcs.version + 1 and to_azure.endpoint == ""
        azure_host, body = _fetch(c, mount.mount_id)
        assert body == _body("azure") and azure_host not in (s3_host, gcs_host)
        assert requests.get(link.url, timeout=10).content == _body("azure")

        moves = [
            r.detail
            for r in c.query_audit("acme", action="vault.rebind_mount")
            if r.outcome == "ok"
        ]
        assert [(d["previous_credential_id"], d["credential_id"]) for d in moves] == [
            (s3.credential_id, gcs.credential_id),
            (gcs.credential_id, azure.credential_id),
        ]
        assert [(d["previous_endpoint"], d["endpoint"]) for d in moves] == [
            ("", clouds.gcs),
            (clouds.gcs, ""),
        ]
        for record in c.query_audit("acme"):
            for secret in ("move-s3-secret", AZURE_KEY):
                assert secret not in str(record)
