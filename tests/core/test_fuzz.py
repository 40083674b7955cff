"""A bounded atheris run over every untrusted-input parser (bucketvault.testing.fuzz).

The long run is ``python -m bucketvault.testing.fuzz --seconds 300``; here a fixed
number of inputs with a fixed seed keeps it a few seconds and reproducible.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from core.secrets_fixtures import KINDS

from bucketvault import errors
from bucketvault.testing import fuzz

SRC = Path(__file__).resolve().parents[2] / "src"
RUNS = 2000


def test_the_harness_reaches_every_kind_and_accepts_its_seeds() -> None:
    assert len(fuzz.kind_specs()) == len(KINDS)
    assert {s.kind.value for s in fuzz.kind_specs()} == set(KINDS)
    for seed in fuzz.seeds():
        fuzz.one_input(seed)


def test_the_harness_flags_what_is_not_a_catalogued_refusal() -> None:
    def crash() -> None:
        raise KeyError("x")

    def internal() -> None:
        raise errors.Internal("boom")

    def leak() -> None:
        raise errors.InvalidArgument("the value s3cr3t-value-xyz is bad", reason="INVALID_FIELD")

    with pytest.raises(KeyError):
        fuzz.expect_refusal(crash)
    with pytest.raises(fuzz.Finding):
        fuzz.expect_refusal(internal)
    with pytest.raises(fuzz.Finding):
        fuzz.expect_refusal(leak, ["s3cr3t-value-xyz"])
    fuzz.expect_refusal(leak)


def test_a_bounded_atheris_run_finds_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-m", "bucketvault.testing.fuzz", f"--runs={RUNS}", "--seed=1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    tail = done.stderr[-4000:]
    assert done.returncode == 0, tail
    assert f"Done {RUNS} runs" in done.stderr, tail
    assert not list(tmp_path.glob("crash-*")), tail
