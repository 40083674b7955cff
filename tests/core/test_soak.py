"""The soak (bucketvault.testing.soak, `make soak` runs it for 10 minutes), for 30 seconds:
the mix against a real server child process ends with no errors, the server's RSS
within 10 % of its post-warm-up size, and `audit verify --full` passing. Outcomes, not
timings: latencies depend on the machine."""

from __future__ import annotations

from bucketvault.testing.soak import MIX, SoakResult, run_soak


def test_soak_30_seconds() -> None:
    result = run_soak(30, callers=4, warmup=5)
    report = result.report()
    assert not any(result.errors.values()), report
    assert all(result.calls.get(kind, 0) > 0 for kind, _ in MIX), report
    assert result.rss_start_kib > 0, report
    assert result.rss_growth <= 0.10, report
    assert result.verify_ok, result.verify_output
    assert result.failures(0.10) == []


def test_soak_fails_on_errors_growth_or_verify() -> None:
    ok = SoakResult(30, {"SignURL": 10}, {}, {}, {}, 100_000, 105_000, True, "")
    assert ok.failures(0.10) == []
    grown = SoakResult(30, {"SignURL": 10}, {}, {}, {}, 100_000, 111_000, True, "")
    assert grown.failures(0.10) == ["RSS grew 11.0% (limit 10%)"]
    failed = SoakResult(30, {"SignURL": 10}, {"SignURL": ["INTERNAL x"]}, {}, {}, 1, 1, False, "")
    assert failed.failures(0.10) == ["1 errors", "audit verify --full failed"]
    assert SoakResult(30, {}, {}, {}, {}, 1, 1, True, "").failures(0.10) == ["no calls"]
