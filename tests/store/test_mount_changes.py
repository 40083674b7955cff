"""replace_mount and delete_mount on SQLite and PostgreSQL: compare-and-swap on the
version, the (tenant, name) uniqueness and the credential foreign key kept, tenants apart."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from bucketvault.errors import Aborted, AlreadyExists, NotFound
from bucketvault.models import Method, MountPolicy
from bucketvault.store.base import Store

if TYPE_CHECKING:  # conftest is not importable under --import-mode=importlib
    from conftest import Factory

LATER = datetime(2026, 1, 2, 4, 4, 5, tzinfo=UTC)


def test_replace_stores_every_changed_field_by_compare_and_swap(
    store: Store, make: Factory
) -> None:
    old, new = make.credential(), make.credential()
    store.insert_credential(old)
    store.insert_credential(new)
    m = make.mount(old.credential.credential_id)
    store.insert_mount(m)
    changed = dataclasses.replace(
        m,
        name="moved",
        bucket="other-bucket",
        prefix="img/",
        region="eu-west-1",
        endpoint="https://storage.example.com",
        credential_id=new.credential.credential_id,
        policy=MountPolicy(60, frozenset({Method.PUT}), True, False),
        version=2,
        updated_at=LATER,
        # Not the store's to change: the original's stays.
        created_at=LATER + timedelta(days=1),
    )
    stored = store.replace_mount(changed, 1)
    assert stored == dataclasses.replace(changed, created_at=m.created_at)
    assert store.get_mount("acme", m.mount_id) == stored
    with pytest.raises(Aborted) as stale:
        store.replace_mount(dataclasses.replace(changed, version=2), 1)
    assert stale.value.reason == "VERSION_MISMATCH"
    with pytest.raises(NotFound) as missing:
        store.replace_mount(dataclasses.replace(changed, mount_id="nope", version=3), 2)
    assert missing.value.reason == "MOUNT_NOT_FOUND"
    with pytest.raises(NotFound) as no_cred:
        store.replace_mount(dataclasses.replace(changed, credential_id="nope", version=3), 2)
    assert no_cred.value.reason == "CREDENTIAL_NOT_FOUND"
    with pytest.raises(NotFound):
        store.replace_mount(dataclasses.replace(changed, tenant="globex", version=3), 2)
    assert store.get_mount("acme", m.mount_id) == stored


def test_replace_keeps_names_unique_per_tenant(store: Store, make: Factory) -> None:
    cred = make.credential()
    store.insert_credential(cred)
    cid = cred.credential.credential_id
    a, b = make.mount(cid, name="a"), make.mount(cid, name="b")
    store.insert_mount(a)
    store.insert_mount(b)
    with pytest.raises(AlreadyExists) as taken:
        store.replace_mount(dataclasses.replace(b, name="a", version=2), 1)
    assert taken.value.reason == "MOUNT_NAME_TAKEN"
    assert store.get_mount("acme", b.mount_id) == b


def test_delete_is_compare_and_swap_and_frees_the_name(store: Store, make: Factory) -> None:
    cred = make.credential()
    store.insert_credential(cred)
    m = make.mount(cred.credential.credential_id, name="gone")
    store.insert_mount(m)
    with pytest.raises(Aborted):
        store.delete_mount("acme", m.mount_id, 2)
    with pytest.raises(NotFound):
        store.delete_mount("globex", m.mount_id, 1)
    assert store.delete_mount("acme", m.mount_id, 1) == m
    assert store.get_mount("acme", m.mount_id) is None
    with pytest.raises(NotFound) as again:
        store.delete_mount("acme", m.mount_id, 1)
    assert again.value.reason == "MOUNT_NOT_FOUND"
    store.insert_mount(make.mount(cred.credential.credential_id, name="gone"))
