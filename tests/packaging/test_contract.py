"""The proto contract: `buf lint` is clean, and `buf breaking` catches a break.

buf comes from npm (`make buf`, a prerequisite of `make test`). `make lint` runs the same
lint and a breaking check of the working tree against the last commit; here the breaking
check is proven able to fail on a copy of the protos with a field removed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bucketvault.testing.emulators import (
    CHECKOUT,
    TOOLS_DIR,
    EmulatorMissing,
    Tool,
    missing_emulator,
)

BUF = Tool("buf", TOOLS_DIR / "buf/node_modules/.bin/buf", "make buf")
PROTOS = CHECKOUT / "protos"


def _buf() -> Path:
    try:
        return BUF.require()
    except EmulatorMissing as exc:
        missing_emulator(exc)


def _run(*args: str | Path, cwd: Path = CHECKOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_buf_lint_is_clean() -> None:
    result = _run(_buf(), "lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def _module(tmp: Path, name: str) -> Path:
    """A copy of the protos as a module of its own (buf.yaml beside them)."""
    root = tmp / name
    shutil.copytree(PROTOS, root)
    config = (CHECKOUT / "buf.yaml").read_text().replace("path: protos", "path: .")
    (root / "buf.yaml").write_text(config)
    return root


def test_buf_breaking_passes_unchanged_and_fails_on_a_removed_field(tmp_path: Path) -> None:
    buf = _buf()
    before, after = _module(tmp_path, "before"), _module(tmp_path, "after")
    same = _run(buf, "breaking", after, "--against", before)
    assert same.returncode == 0, same.stdout + same.stderr

    signer = after / "bucketvault/v1/signer.proto"
    text = signer.read_text()
    # Drop one field of SignURLRequest: the kind of change a client would break on.
    changed = re.sub(
        r"(message SignURLRequest \{.*?)\n\s*string key = \d+;", r"\1", text, count=1, flags=re.S
    )
    assert changed != text, "the test's edit no longer matches signer.proto"
    signer.write_text(changed)
    broken = _run(buf, "breaking", after, "--against", before)
    assert broken.returncode != 0
    assert "SignURLRequest" in broken.stdout + broken.stderr


def test_enum_values_carry_their_prefix_and_services_their_suffix() -> None:
    """What the lint rules mean for the generated code everyone imports."""
    from bucketvault.v1 import common_pb2, signer_pb2, vault_pb2

    assert common_pb2.CredentialKind.Name(1) == "CREDENTIAL_KIND_AWS_ROLE"
    assert set(vault_pb2.DESCRIPTOR.services_by_name) == {"VaultService"}
    assert set(signer_pb2.DESCRIPTOR.services_by_name) == {"SignerService"}
