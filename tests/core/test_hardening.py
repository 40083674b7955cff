"""The serving process cannot dump core: RLIMIT_CORE is 0 and (Linux) it is not dumpable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bucketvault.testing.server import start_server_process


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_bucketvault_serve_cannot_dump_core(tmp_path: Path) -> None:
    with start_server_process(tmp_path, workers=2) as srv:
        assert srv.pid is not None
        limits = Path(f"/proc/{srv.pid}/limits").read_text()
        core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core
        # PR_GET_DUMPABLE answers only inside the process: the child reports it at start.
        said = "".join(srv.startup_output)
        assert "core dumps disabled: RLIMIT_CORE=0, dumpable=0" in said, said
        srv.client().registration_key()
