"""Session cache behaviour with a frozen clock and a fake STS at the provider's seam."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from aws.aws_support import EPOCH, ROLE_ARN, FakeSts, credential, mount, secret

from bucketvault.clock import FrozenClock
from bucketvault.errors import FailedPrecondition, Unavailable
from bucketvault.models import CredentialKind, Method
from bucketvault.providers.aws.credentials import AwsCredentials
from bucketvault.providers.aws.provider import AwsProvider
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.providers.aws.sts import Backoff, StsThrottled, StsUnavailable
from bucketvault.testing.providers import Ruled, UrlRequest
from bucketvault.urlpolicy import UrlPolicy

MOUNT = mount("photos", region="eu-west-1")
HOUR = timedelta(hours=1)


class ManualSpawn:
    """Collects background refreshes so the test decides when they run."""

    def __init__(self) -> None:
        self.tasks: list[Callable[[], None]] = []

    def __call__(self, work: Callable[[], None]) -> None:
        self.tasks.append(work)

    def run_all(self) -> None:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task()


class World:
    def __init__(self, *, max_duration: int = 43200, session_seconds: str = "21600") -> None:
        self.clock = FrozenClock(EPOCH)
        self.sts = FakeSts(self.clock, max_duration=max_duration)
        self.spawn = ManualSpawn()
        self.slept: list[float] = []
        self.provider = Ruled(
            AwsProvider(
                AwsSettings(service_principal_arn="arn:aws:iam::111122223333:role/bv"),
                self.clock,
                UrlPolicy(),
                sts=self.sts,
                backoff=Backoff(sleep=self.slept.append, rng=lambda: 0.5),
                spawn=self.spawn,
            ),
            self.clock,
        )
        meta = {"external_id": "ext-acme", "session_duration_seconds": session_seconds}
        self.handle = self.provider.open(
            credential(CredentialKind("AWS_ROLE"), meta),
            secret(CredentialKind("AWS_ROLE"), role_arn=ROLE_ARN),
        )

    def sign(self, ttl: int = 3600) -> tuple[str, str, int, str]:
        """(access key in the URL, capped_by, seconds until expires_at, url)."""
        [signed] = self.handle.sign(MOUNT, ["a.jpg"], UrlRequest(Method.GET, ttl))
        query = parse_qs(urlsplit(signed.url).query)
        left = int((signed.expires_at - self.clock.now()).total_seconds())
        assert int(query["X-Amz-Expires"][0]) == left
        return query["X-Amz-Credential"][0].split("/")[0], signed.expiry_capped_by, left, signed.url


def test_cold_start_assumes_role_once_with_the_credential_parameters() -> None:
    w = World()
    key, capped, left, url = w.sign()
    assert key == "ASIAFAKE00000001"
    assert (capped, left) == ("", 3600)
    assert "X-Amz-Security-Token=token-1" in url
    [call] = w.sts.calls
    assert call.role_arn == ROLE_ARN
    assert call.external_id == "ext-acme"
    assert call.duration_seconds == 21600
    # Sessions are named for the tenant and the mount's scope (bucket + scope digest).
    assert call.session_name.startswith("bv.acme.photos.")
    assert call.policy and call.source_identity == "bucketvault"
    w.sign()
    assert len(w.sts.calls) == 1


def test_fifty_concurrent_cold_callers_cause_one_assume_role() -> None:
    w = World()
    w.sts.gate = threading.Event()
    start = threading.Barrier(50)
    results: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        start.wait()
        try:
            results.append(w.sign()[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(50)]
    for t in threads:
        t.start()
    w.sts.gate.set()
    for t in threads:
        t.join(20)
    assert errors == []
    assert results == ["ASIAFAKE00000001"] * 50
    assert len(w.sts.calls) == 1


def test_advisory_window_refreshes_in_background_while_old_session_serves() -> None:
    w = World()
    w.sign()
    # 6 h session; 95 minutes left: inside the advisory window, outside the mandatory one.
    w.clock.advance(timedelta(hours=6) - timedelta(minutes=95))
    key, capped, left, _ = w.sign()
    assert key == "ASIAFAKE00000001"
    assert (capped, left) == ("", 3600)
    assert len(w.sts.calls) == 1
    assert len(w.spawn.tasks) == 1
    w.sign()
    assert len(w.spawn.tasks) == 1, "one background refresh at a time"
    w.spawn.run_all()
    assert len(w.sts.calls) == 2
    assert w.sign()[0] == "ASIAFAKE00000002"


def test_mandatory_window_blocks_for_a_new_session() -> None:
    w = World()
    w.sign()
    w.clock.advance(timedelta(hours=6) - timedelta(minutes=65))
    key, capped, left, _ = w.sign()
    assert key == "ASIAFAKE00000002"
    assert (capped, left) == ("", 3600), "a 1-hour URL is not cut short by the refresh policy"
    assert w.spawn.tasks == []


def test_sts_outage_keeps_serving_a_valid_session_with_capped_urls() -> None:
    w = World()
    w.sign()
    w.clock.advance(timedelta(hours=6) - timedelta(minutes=40))
    w.sts.down = StsUnavailable("STS could not be reached")
    key, capped, left, _ = w.sign()
    assert key == "ASIAFAKE00000001"
    assert capped == "SESSION_EXPIRY"
    assert left == 35 * 60, "session expiry minus the 5-minute skew margin"
    tries = len(w.sts.calls)
    assert tries == 5, "first call plus four attempts with backoff"
    assert w.slept == [0.1, 0.2, 0.4]
    # Within the retry pause nobody calls STS again.
    w.clock.advance(10)
    assert w.sign()[0] == "ASIAFAKE00000001"
    assert len(w.sts.calls) == tries
    # Past expiry minus skew there is nothing valid left to serve.
    w.clock.advance(timedelta(minutes=36))
    with pytest.raises(Unavailable) as info:
        w.sign()
    assert info.value.reason == "STS_UNAVAILABLE"
    # STS recovers: signing works again.
    w.sts.down = None
    w.clock.advance(60)
    assert w.sign()[0].startswith("ASIAFAKE")
    assert w.sign()[1] == ""


def test_throttling_is_retried_with_backoff_and_jitter() -> None:
    w = World()
    w.sts.failures = [StsThrottled("Throttling"), StsThrottled("Throttling")]
    assert w.sign()[0] == "ASIAFAKE00000003"
    assert w.slept == [0.1, 0.2]


def test_url_expiry_is_capped_by_a_one_hour_session() -> None:
    w = World(max_duration=3600, session_seconds="3600")
    _, capped, left, _ = w.sign(ttl=3600)
    assert (capped, left) == ("SESSION_EXPIRY", 3300)
    assert w.sts.calls[0].duration_seconds == 3600
    _, capped, left, _ = w.sign(ttl=600)
    assert (capped, left) == ("", 600)


def test_role_lowering_its_max_session_falls_back_to_one_hour() -> None:
    w = World(max_duration=3600, session_seconds="21600")
    _, capped, left, _ = w.sign()
    assert [c.duration_seconds for c in w.sts.calls] == [21600, 3600]
    assert (capped, left) == ("SESSION_EXPIRY", 3300)


def test_seven_day_cap_is_the_provider_maximum() -> None:
    w = World()
    handle = w.provider.open(
        credential(CredentialKind("S3_ACCESS_KEY")),
        secret(CredentialKind("S3_ACCESS_KEY"), access_key_id="AKID", secret_access_key="s"),
    )
    [signed] = handle.sign(MOUNT, ["k"], UrlRequest(Method.GET, 900000, "MOUNT_MAX_TTL"))
    assert signed.expiry_capped_by == "PROVIDER_MAX"
    assert signed.expires_at == w.clock.now() + timedelta(seconds=604800)
    assert "X-Amz-Expires=604800" in signed.url
    [signed] = handle.sign(MOUNT, ["k"], UrlRequest(Method.GET, 600, "MOUNT_MAX_TTL"))
    assert signed.expiry_capped_by == "MOUNT_MAX_TTL"


def test_denied_role_fails_signing_and_closed_handle_refuses() -> None:
    w = World()
    w.sts.down = FailedPrecondition("denied", reason="ASSUME_ROLE_DENIED")
    with pytest.raises(FailedPrecondition):
        w.sign()
    w.sts.down = None
    w.handle.close()
    with pytest.raises(Unavailable):
        w.sign()


def test_secrets_stay_out_of_reprs() -> None:
    w = World()
    w.sign()
    doc = secret(CredentialKind("S3_ACCESS_KEY"), access_key_id="AKID", secret_access_key="hush")
    assert "hush" not in repr(doc)
    creds = AwsCredentials("AKID", "hush", "tok-secret")
    assert "hush" not in repr(creds) and "tok-secret" not in repr(creds)
    assert "hush" not in repr(creds.identity())
    assert "secret" not in repr(AwsSettings(secret_access_key="secret", session_token="secret"))
