"""Our staged SAS equals azure-storage-blob's generate_blob_sas byte for byte."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from azure.storage.blob import BlobClient, UserDelegationKey, generate_blob_sas
from azure.storage.blob._shared.constants import X_MS_VERSION
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketvault.providers.azure.sas import (
    SAS_VERSION,
    DelegationKey,
    SasRequest,
    blob_path,
    service_sas,
    user_delegation_sas,
)

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EXPIRY = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
START = EXPIRY - timedelta(hours=1)

UDK = DelegationKey(
    signed_oid="11111111-2222-3333-4444-555555555555",
    signed_tid="66666666-7777-8888-9999-000000000000",
    signed_start="2026-03-01T00:00:00Z",
    signed_expiry="2026-03-08T00:00:00Z",
    signed_service="b",
    signed_version="2026-10-06",
    value=base64.b64encode(b"k" * 32).decode(),
)

# Blob names the key rules allow: no controls, no surrogates, no '.'/'..' segments.
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), max_codepoint=0x2FFFF),
    min_size=1,
    max_size=60,
).filter(lambda n: not any(s in (".", "..") for s in n.split("/")))
overrides = st.sampled_from(["", "image/png", "text/plain; charset=utf-8"])
dispositions = st.sampled_from(["", 'attachment; filename="a b.png"', "inline"])


def sdk_udk() -> UserDelegationKey:
    key = UserDelegationKey()
    key.signed_oid = UDK.signed_oid
    key.signed_tid = UDK.signed_tid
    key.signed_start = UDK.signed_start
    key.signed_expiry = UDK.signed_expiry
    key.signed_service = UDK.signed_service
    key.signed_version = UDK.signed_version
    key.value = UDK.value
    return key


def test_pinned_version_is_the_sdks() -> None:
    assert SAS_VERSION == X_MS_VERSION


@settings(max_examples=300, deadline=None)
@given(
    name=names,
    perm=st.sampled_from(["r", "cw"]),
    ctype=overrides,
    disp=dispositions,
    with_start=st.booleans(),
)
def test_service_sas_equals_sdk(
    name: str, perm: str, ctype: str, disp: str, with_start: bool
) -> None:
    req = SasRequest(
        ACCOUNT,
        "photos",
        perm,
        EXPIRY,
        START if with_start else None,
        content_type=ctype,
        content_disposition=disp,
    )
    seen: list[str] = []
    expected = generate_blob_sas(
        ACCOUNT,
        "photos",
        name,
        account_key=KEY,
        permission=perm,
        expiry=EXPIRY,
        start=START if with_start else None,
        content_type=ctype or None,
        content_disposition=disp or None,
        sts_hook=seen.append,
    )
    template = service_sas(base64.b64decode(KEY), req)
    assert template.string_to_sign(name) == seen[0]
    assert template.token(name) == expected


@settings(max_examples=300, deadline=None)
@given(name=names, perm=st.sampled_from(["r", "cw"]), ctype=overrides, disp=dispositions)
def test_user_delegation_sas_equals_sdk(name: str, perm: str, ctype: str, disp: str) -> None:
    req = SasRequest(ACCOUNT, "photos", perm, EXPIRY, content_type=ctype, content_disposition=disp)
    seen: list[str] = []
    expected = generate_blob_sas(
        ACCOUNT,
        "photos",
        name,
        user_delegation_key=sdk_udk(),
        permission=perm,
        expiry=EXPIRY,
        content_type=ctype or None,
        content_disposition=disp or None,
        sts_hook=seen.append,
    )
    template = user_delegation_sas(UDK, req)
    assert template.string_to_sign(name) == seen[0]
    assert template.token(name) == expected


@given(name=names)
def test_blob_path_matches_sdk_url(name: str) -> None:
    client = BlobClient("http://127.0.0.1:1/devstoreaccount1", "photos", name)
    assert client.url == "http://127.0.0.1:1/devstoreaccount1" + blob_path("photos", name)


def test_template_repr_hides_key() -> None:
    template = service_sas(base64.b64decode(KEY), SasRequest(ACCOUNT, "c", "r", EXPIRY))
    assert KEY not in repr(template)
    assert "hidden" in repr(template)
    assert UDK.value not in repr(UDK)
