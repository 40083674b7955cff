"""The rules every cloud passes through (providers/rules.py), and the provider registry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bucketvault.errors import FailedPrecondition, Unavailable
from bucketvault.models import Method, MountPolicy, SignOptions
from bucketvault.providers.base import SAS_EXPIRY, SESSION_EXPIRY, SignedBatch
from bucketvault.providers.registry import ProviderRegistry
from bucketvault.providers.rules import SESSION_SKEW, capped
from bucketvault.testing.fakes import offline_providers

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
WEEK = 7 * 24 * 3600
HOUR_MOUNT = MountPolicy(3600, frozenset({Method.GET}))


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
    out = capped(ask(WEEK + 1), Snapshot(None), WEEK, HOUR_MOUNT)
    assert (out.expires_in, out.capped_by) == (WEEK, "PROVIDER_MAX")
    out = capped(ask(600, "MOUNT_MAX_TTL"), Snapshot(None), WEEK, HOUR_MOUNT)
    assert (out.expires_in, out.capped_by) == (600, "MOUNT_MAX_TTL")


def test_a_session_caps_with_the_skew_margin_and_a_sas_without() -> None:
    end = NOW + timedelta(hours=1)
    session = capped(ask(3600), Snapshot(end, SESSION_EXPIRY), WEEK, HOUR_MOUNT)
    assert (session.expires_in, session.capped_by) == (3600 - 300, SESSION_EXPIRY)
    short = capped(ask(60), Snapshot(end, SESSION_EXPIRY), WEEK, HOUR_MOUNT)
    assert (short.expires_in, short.capped_by) == (60, "")


def test_a_url_carrying_a_sas_reports_the_sas_end_whatever_was_asked() -> None:
    end = NOW + timedelta(minutes=50)
    for asked in (60, 3600 * 2):
        sas = capped(ask(asked), Snapshot(end, SAS_EXPIRY), WEEK, HOUR_MOUNT)
        assert (sas.expires_in, sas.capped_by) == (50 * 60, SAS_EXPIRY)


def test_a_sas_outliving_the_mount_max_ttl_signs_only_when_the_mount_accepts_it() -> None:
    end = NOW + timedelta(days=30)
    with pytest.raises(FailedPrecondition) as info:
        capped(ask(60), Snapshot(end, SAS_EXPIRY), WEEK, HOUR_MOUNT)
    assert info.value.reason == "SAS_OUTLIVES_MOUNT_TTL"
    accepting = MountPolicy(3600, frozenset({Method.GET}), allow_credential_lifetime=True)
    # Past the cloud's 7-day maximum too: the SAS, not we, decides how long it works.
    sas = capped(ask(60), Snapshot(end, SAS_EXPIRY), WEEK, accepting)
    assert (sas.expires_in, sas.capped_by) == (30 * 24 * 3600, SAS_EXPIRY)
    with pytest.raises(FailedPrecondition) as info:
        capped(ask(60), Snapshot(NOW, SAS_EXPIRY), WEEK, accepting)
    assert info.value.reason == "SAS_EXPIRED"


def test_a_session_inside_its_margin_signs_nothing() -> None:
    with pytest.raises(Unavailable) as info:
        capped(ask(60), Snapshot(NOW + SESSION_SKEW), WEEK, HOUR_MOUNT)
    assert info.value.reason == "SESSION_EXPIRED"


def test_a_kind_is_served_by_one_provider_only() -> None:
    providers = offline_providers()
    with pytest.raises(ValueError, match="served by two providers"):
        ProviderRegistry([*providers, providers[0]])
