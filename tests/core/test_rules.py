"""The rules every cloud passes through (providers/rules.py), and the provider registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bucketvault.errors import Unavailable
from bucketvault.models import Method, SignOptions
from bucketvault.providers.base import SAS_EXPIRY, SESSION_EXPIRY, SignedBatch
from bucketvault.providers.registry import ProviderRegistry
from bucketvault.providers.rules import SESSION_SKEW, capped
from bucketvault.testing.fakes import offline_providers

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WEEK = 7 * 24 * 3600


@dataclass(frozen=True)
class Snapshot:
    """A BatchSigner stand-in: only its validity matters to the cap."""

    valid_until: datetime | None
    limit_reason: str = SESSION_EXPIRY

    def sign(self, keys: Sequence[str], options: SignOptions) -> SignedBatch:
        return SignedBatch([f"u/{k}" for k in keys])


def ask(seconds: int, capped_by: str = "") -> SignOptions:
    return SignOptions(Method.GET, seconds, NOW, capped_by)


def test_the_cloud_maximum_caps_and_says_so() -> None:
    out = capped(ask(WEEK + 1), Snapshot(None), WEEK)
    assert (out.expires_in, out.capped_by) == (WEEK, "PROVIDER_MAX")
    out = capped(ask(600, "MOUNT_MAX_TTL"), Snapshot(None), WEEK)
    assert (out.expires_in, out.capped_by) == (600, "MOUNT_MAX_TTL")


def test_a_session_caps_with_the_skew_margin_and_a_sas_without() -> None:
    end = NOW + timedelta(hours=1)
    session = capped(ask(3600), Snapshot(end, SESSION_EXPIRY), WEEK)
    assert (session.expires_in, session.capped_by) == (3600 - 300, SESSION_EXPIRY)
    sas = capped(ask(3600 * 2), Snapshot(end, SAS_EXPIRY), WEEK)
    assert (sas.expires_in, sas.capped_by) == (3600, SAS_EXPIRY)
    short = capped(ask(60), Snapshot(end, SESSION_EXPIRY), WEEK)
    assert (short.expires_in, short.capped_by) == (60, "")


def test_a_session_inside_its_margin_signs_nothing() -> None:
    with pytest.raises(Unavailable) as info:
        capped(ask(60), Snapshot(NOW + SESSION_SKEW), WEEK)
    assert info.value.reason == "SESSION_EXPIRED"


def test_a_kind_is_served_by_one_provider_only() -> None:
    providers = offline_providers()
    with pytest.raises(ValueError, match="served by two providers"):
        ProviderRegistry([*providers, providers[0]])
