"""Azurite (plain and HTTPS + OAuth) and a local Entra-style token endpoint, per session."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from azure.azurite_support import (
    ACCOUNT,
    CLIENT_ID,
    CLIENT_SECRET,
    Azurite,
    Tls,
    TokenEndpoint,
    make_jwt,
)

from bucketvault.testing.emulators import required, start_azurite
from bucketvault.testing.loopback import LoopbackServer, StandInHandler
from bucketvault.testing.tls import localhost_certificate


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite blob over http, shared key / SAS only."""
    with required(start_azurite()) as server:
        yield Azurite(f"{server.url}/{ACCOUNT}", server.port)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1 (Azurite HTTPS and the token endpoint)."""
    return localhost_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def azurite_oauth(tls: Tls) -> Iterator[Azurite]:
    """Azurite blob over https with --oauth basic: user delegation keys work."""
    with required(start_azurite(tls=tls)) as server:
        yield Azurite(f"{server.url}/{ACCOUNT}", server.port)


@pytest.fixture(scope="session")
def token_endpoint(tls: Tls) -> Iterator[TokenEndpoint]:
    """A tiny HTTPS Entra look-alike: OpenID discovery + client-credentials token grant."""
    seen: list[dict[str, str]] = []

    class Handler(StandInHandler):
        def do_GET(self) -> None:
            base = f"https://127.0.0.1:{self.server.server_address[1]}"
            parts = self.path.split("?")[0].strip("/").split("/")
            tenant = parts[0]
            if self.path.split("?")[0].endswith("/.well-known/openid-configuration"):
                self.reply_json(
                    200,
                    {
                        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                        "issuer": f"{base}/{tenant}/v2.0",
                        "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
                    },
                )
                return
            self.reply_json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            tenant = self.path.strip("/").split("/")[0]
            seen.append({"tenant": tenant, **{k: form.get(k, "") for k in ("client_id", "scope")}})
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                self.reply_json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                    },
                )
                return
            self.reply_json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": make_jwt(tenant),
                },
            )

    with LoopbackServer(Handler, tls=tls) as server:
        yield TokenEndpoint(server.url, seen)
