"""BUCKETVAULT_BROWSER_ORIGINS, and the CORS target surviving the metrics wrapper."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bucketvault.config import Config
from bucketvault.errors import InvalidArgument
from bucketvault.models import Method, Mount, MountPolicy
from bucketvault.observe.handles import CountingHandle
from bucketvault.observe.metrics import NoMetrics
from bucketvault.providers.cors import CorsSource, CorsTarget, s3_how, s3_rule
from bucketvault.testing.fakes import LocalHandle

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
MOUNT = Mount(
    "m-1", "acme", "m", "b", "p/", "", "", "c-1", MountPolicy(60, frozenset(Method)), 1, WHEN, WHEN
)


def test_origins_are_parsed_and_normalised() -> None:
    env = {"BUCKETVAULT_BROWSER_ORIGINS": " https://app.example.com/ , http://localhost:3000"}
    config = Config.from_env(env)
    assert config.browser_origins == ("https://app.example.com", "http://localhost:3000")
    assert Config.from_env({}).browser_origins == ()


@pytest.mark.parametrize("bad", ["app.example.com", "https://a.example/path", "ftp://a.example"])
def test_a_malformed_origin_stops_the_server(bad: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        Config.from_env({"BUCKETVAULT_BROWSER_ORIGINS": bad})
    assert info.value.reason == "INVALID_CONFIG"
    assert "BUCKETVAULT_BROWSER_ORIGINS" in info.value.message


class _WithTarget(LocalHandle):
    def cors_target(self, mount: Mount) -> CorsTarget:
        return CorsTarget(f"https://x/{mount.bucket}/probe", s3_rule, s3_how(mount.bucket))


def test_the_metrics_wrapper_forwards_the_target_or_none() -> None:
    wrapped = CountingHandle(_WithTarget("c-1", ()), "aws", NoMetrics())
    assert isinstance(wrapped, CorsSource)
    target = wrapped.cors_target(MOUNT)
    assert target is not None and target.url == "https://x/b/probe"
    assert CountingHandle(LocalHandle("c-1", ()), "aws", NoMetrics()).cors_target(MOUNT) is None
