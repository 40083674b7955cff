"""Each kind is declared once, by the provider that serves it, and named in the wire enum."""

from __future__ import annotations

import re
from pathlib import Path

from bucketvault.clock import SystemClock
from bucketvault.protoenums import short_name
from bucketvault.providers.registry import build_providers
from bucketvault.urlpolicy import UrlPolicy
from bucketvault.v1 import common_pb2

SRC = Path(__file__).resolve().parents[2] / "src" / "bucketvault"
# The wire enum's kinds by the names the code uses (AWS_ROLE for CREDENTIAL_KIND_AWS_ROLE).
WIRE_KINDS = [
    short_name(common_pb2.CredentialKind, n)
    for n in common_pb2.CredentialKind.values()
    if n != common_pb2.CREDENTIAL_KIND_UNSPECIFIED
]


def test_every_wire_kind_is_served_by_exactly_one_provider() -> None:
    registry = build_providers({}, SystemClock(), UrlPolicy())
    wire = set(WIRE_KINDS)
    served = [k.value for p in registry.providers for k in p.kinds]
    assert sorted(served) == sorted(wire)
    assert len(served) == len(set(served))
    for provider in registry.providers:
        for kind, spec in provider.kinds.items():
            assert spec.kind == kind
            schema = spec.json_schema()
            assert schema["title"] == kind.value
            assert set(schema["required"]) <= set(schema["properties"])


def test_the_core_names_no_kind_and_no_cloud() -> None:
    # Outside providers/ (and the clients that speak the wire enum: the SDK, the CLI, the
    # soak load generator and the demo, which runs the CLI), no code may name a credential
    # kind: adding a cloud is its folder plus the enum value.
    pattern = re.compile("|".join(WIRE_KINDS))
    wire_clients = (
        SRC / "client",
        SRC / "cli",
        SRC / "testing" / "soak.py",
        SRC / "testing" / "demo.py",
    )
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if not path.is_relative_to(SRC / "providers")
        and not path.is_relative_to(SRC / "v1")
        and not any(path.is_relative_to(c) for c in wire_clients)
        and pattern.search(path.read_text())
    ]
    assert offenders == []
