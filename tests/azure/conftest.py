"""Azurite (plain and HTTPS + OAuth) and a local Entra-style token endpoint, per session."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import jwt
import pytest
from azure.azurite_support import (
    ACCOUNT,
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    APP_OBJECT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    ROLELESS_TENANT,
    UNCONSENTED_TENANT,
    AppCertificate,
    Azurite,
    Tls,
    TokenEndpoint,
    app_certificate,
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
def app_cert(tmp_path_factory: pytest.TempPathFactory) -> AppCertificate:
    """The certificate of the service's own app (AZURE_DELEGATED with a certificate)."""
    return app_certificate(tmp_path_factory.mktemp("app"))


_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _app_assertion_ok(assertion: str, cert: AppCertificate, token_url: str) -> bool:
    """Check a client assertion as Entra does: signed by the app's key, for this endpoint."""
    try:
        claims = jwt.decode(
            assertion,
            cert.public_key,
            algorithms=["RS256", "PS256"],
            audience=token_url,
            options={"require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.PyJWTError:
        return False
    return bool(claims["iss"] == claims["sub"] == APP_CLIENT_ID)


@pytest.fixture(scope="session")
def token_endpoint(tls: Tls, app_cert: AppCertificate) -> Iterator[TokenEndpoint]:
    """A tiny HTTPS Entra look-alike: OpenID discovery + client-credentials token grant.

    Besides the customer's service principal (CLIENT_ID), it plays the service's own
    multi-tenant app (APP_CLIENT_ID, secret or certificate assertion) in three customer
    tenants: consented, not consented (AADSTS700016, as Entra answers), and consented
    without roles. Azurite does no RBAC, so the roleless tenant's token names another
    audience: Azurite then refuses the delegation key with 403, as Azure does without
    Storage Blob Delegator.
    """
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
            fields = ("client_id", "scope", "client_assertion_type")
            seen.append({"tenant": tenant, **{k: form.get(k, "") for k in fields}})
            if form.get("client_id") == APP_CLIENT_ID:
                self._app_token(tenant, form)
                return
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

        def _app_token(self, tenant: str, form: dict[str, str]) -> None:
            url = f"https://127.0.0.1:{self.server.server_address[1]}{self.path.split('?')[0]}"
            if form.get("client_assertion_type") == _ASSERTION_TYPE:
                proven = _app_assertion_ok(form.get("client_assertion", ""), app_cert, url)
            else:
                proven = form.get("client_secret") == APP_CLIENT_SECRET
            if not proven:
                self.reply_json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.",
                        "error_codes": [7000215],
                    },
                )
                return
            if tenant == UNCONSENTED_TENANT:
                self.reply_json(
                    400,
                    {
                        "error": "unauthorized_client",
                        "error_description": (
                            f"AADSTS700016: Application with identifier '{APP_CLIENT_ID}' was "
                            f"not found in the directory '{tenant}'. This can happen if the "
                            "application has not been installed by the administrator of the "
                            "tenant or consented to by any user in the tenant."
                        ),
                        "error_codes": [700016],
                    },
                )
                return
            audience = "https://not-storage.example" if tenant == ROLELESS_TENANT else None
            token = make_jwt(
                tenant,
                appid=APP_CLIENT_ID,
                oid=APP_OBJECT_ID,
                **({"audience": audience} if audience else {}),
            )
            self.reply_json(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": token,
                },
            )

    with LoopbackServer(Handler, tls=tls) as server:
        yield TokenEndpoint(server.url, seen)
