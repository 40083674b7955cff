"""The README's SDK examples (the python blocks under "### The Python SDK") run, in
order, against a real in-process server. Convention: examples read the server's address
and token from BUCKETVAULT_ADDRESS and BUCKETVAULT_TOKEN, which this test sets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bucketvault.testing.fakes import local_providers
from bucketvault.testing.server import start_server

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### The Python SDK"


def sdk_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(HEADING) + len(HEADING) :]
    section = re.split(r"^#{1,3} ", section, maxsplit=1, flags=re.M)[0]
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.M | re.S)


def test_the_readme_has_sync_and_async_examples() -> None:
    blocks = sdk_examples()
    assert len(blocks) == 2
    assert "BucketVaultClient(" in blocks[0] and "AsyncBucketVaultClient(" in blocks[1]


def test_readme_sdk_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with start_server(tmp_path, providers=local_providers(("a.jpg", "b.jpg"))) as srv:
        monkeypatch.setenv("BUCKETVAULT_ADDRESS", srv.address)
        monkeypatch.setenv("BUCKETVAULT_TOKEN", srv.admin_token)
        for i, block in enumerate(sdk_examples()):
            exec(compile(block, f"README.md:sdk-example-{i}", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "MOUNT_NOT_FOUND" in out
    assert "['a.jpg', 'b.jpg']" in out
