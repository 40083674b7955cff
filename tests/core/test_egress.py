"""SSRF at connect time: every provider connection re-checks the address it reaches.

A name that passed registration can resolve elsewhere later (DNS rebinding). The egress
guard resolves through the policy's resolver (the seam: here a table that makes a
public-looking name answer 127.0.0.1 or a metadata address), checks every answer and
connects to a checked address. A listener on a loopback port records that nothing came.
Redirects are never followed: a stand-in answering 307 towards the listener proves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import boto3
import pytest
import requests
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from core.secrets_fixtures import sample

from bucketvault import errors
from bucketvault.clock import SystemClock
from bucketvault.providers.aws import AwsProvider, AwsSettings
from bucketvault.providers.azure import AzureConfig, AzureProvider
from bucketvault.providers.cors import CorsTarget, preflight
from bucketvault.providers.egress import Egress
from bucketvault.providers.gcs import GcsProvider
from bucketvault.reasons import REASONS
from bucketvault.testing.loopback import CountingListener, LoopbackServer, StandInHandler
from bucketvault.testing.server import start_server
from bucketvault.testing.tls import localhost_certificate
from bucketvault.urlpolicy import UrlPolicy

CATALOGUE = {r.name: r for r in REASONS}
PUBLIC = "93.184.216.34"
NAME = "bucket.example.com"


def _rebinding(answers: Sequence[str], *, insecure: bool = False) -> UrlPolicy:
    """A policy whose DNS answers NAME with answers (what a rebinding server would)."""
    table = {NAME: list(answers)}
    return UrlPolicy(allow_insecure=insecure, resolver=lambda host: table.get(host, ()))


def _assert_refused(exc: BaseException, reason: str = "ENDPOINT_NOT_ALLOWED") -> None:
    assert isinstance(exc, errors.BucketVaultError)
    assert exc.reason == reason
    assert type(exc) is CATALOGUE[reason].error


FORBIDDEN_ANSWERS = [
    ["127.0.0.1"],
    ["169.254.169.254"],
    ["fd00:ec2::254"],
    ["::ffff:127.0.0.1"],
    ["::1"],
    ["10.0.0.7"],
    ["100.64.0.1"],
    ["2002:7f00:1::"],
    # One bad answer refuses the name: which one a retry gets is the attacker's choice.
    [PUBLIC, "127.0.0.1"],
]


def _s3(egress: Egress, endpoint: str) -> Any:
    return _client(egress, "s3", endpoint)


def _client(egress: Egress, service: str, endpoint: str) -> Any:
    client = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x" * 40, region_name="us-east-1"
    ).client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2),
    )
    return egress.guard_boto(client)


def _blob(egress: Egress, url: str) -> BlobServiceClient:
    # The options the Azure provider gives every pipeline (transport, no redirects).
    options = AzureConfig(url_policy=egress.policy, retry_total=0).transport_options()
    return BlobServiceClient(url, **options)


@pytest.mark.parametrize("answers", FORBIDDEN_ANSWERS, ids=",".join)
def test_a_rebound_name_is_refused_before_any_connection(
    answers: list[str], listener: CountingListener
) -> None:
    egress = Egress(_rebinding(answers))
    url = f"http://{NAME}:{listener.port}"
    with pytest.raises(errors.FailedPrecondition) as exc:
        egress.session().get(url, timeout=2)
    _assert_refused(exc.value)
    assert NAME in exc.value.message and answers[-1] not in exc.value.message
    with pytest.raises(errors.FailedPrecondition) as exc:
        _s3(egress, url).list_objects_v2(Bucket="b")
    _assert_refused(exc.value)
    with pytest.raises(errors.FailedPrecondition) as exc:
        _blob(egress, f"{url}/").get_service_properties()
    _assert_refused(exc.value)
    assert listener.accepted == 0


@pytest.mark.parametrize("literal", ["127.0.0.1", "[::1]", "169.254.169.254"])
def test_an_address_literal_is_checked_like_an_answer(
    literal: str, listener: CountingListener
) -> None:
    egress = Egress(_rebinding([]))
    with pytest.raises(errors.FailedPrecondition) as exc:
        egress.session().get(f"http://{literal}:{listener.port}/", timeout=2)
    _assert_refused(exc.value)
    assert listener.accepted == 0


class _Recorder(StandInHandler):
    hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hosts.append(self.headers["Host"])
        self.reply(200, b"ok", "text/plain")


def test_insecure_mode_connects_to_the_checked_address_and_keeps_the_host() -> None:
    # The control for the test above: the same seam, loopback allowed (emulators).
    egress = Egress(_rebinding(["127.0.0.1"], insecure=True))
    with LoopbackServer(_Recorder) as stand_in:
        answer = egress.session().get(f"http://{NAME}:{stand_in.port}/x", timeout=5)
    assert (answer.status_code, answer.text) == (200, "ok")
    assert _Recorder.hosts[-1] == f"{NAME}:{stand_in.port}"


@pytest.mark.parametrize("answer", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"])
def test_insecure_mode_still_refuses_metadata_addresses(
    answer: str, listener: CountingListener
) -> None:
    egress = Egress(_rebinding([answer], insecure=True))
    with pytest.raises(errors.FailedPrecondition) as exc:
        egress.session().get(f"http://{NAME}:{listener.port}/", timeout=2)
    _assert_refused(exc.value)


def test_tls_verifies_the_name_not_the_address_connected_to(tmp_path: Path) -> None:
    # The certificate names 127.0.0.1 and localhost: a check against the address would
    # pass for any name; against the name it passes for localhost only.
    tls = localhost_certificate(tmp_path)
    table = {"localhost": ["127.0.0.1"], NAME: ["127.0.0.1"]}
    egress = Egress(UrlPolicy(allow_insecure=True, resolver=lambda host: table.get(host, ())))
    with LoopbackServer(_Recorder, tls=tls) as stand_in:
        good = egress.session().get(
            f"https://localhost:{stand_in.port}/", verify=str(tls.cert), timeout=5
        )
        assert good.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            egress.session().get(f"https://{NAME}:{stand_in.port}/", verify=str(tls.cert))


def test_a_name_that_no_longer_resolves_fails_as_unreachable(listener: CountingListener) -> None:
    egress = Egress(_rebinding([]))
    with pytest.raises(requests.ConnectionError):
        egress.session().get(f"http://{NAME}:{listener.port}/", timeout=2)
    assert listener.accepted == 0


def test_a_name_that_does_not_resolve_at_registration_is_refused() -> None:
    # Fail closed (README: accepting it would let a later answer point it anywhere).
    with pytest.raises(errors.InvalidArgument) as exc:
        _rebinding([]).check_endpoint(f"https://{NAME}", field="secret.endpoint_url")
    _assert_refused(exc.value, "ENDPOINT_UNRESOLVABLE")


# -- redirects ------------------------------------------------------------------------


def _redirecting(target: str) -> type[StandInHandler]:
    class Redirect(StandInHandler):
        def do_GET(self) -> None:
            # An error document each SDK parses (STS POSTs; Azure GETs).
            error = b"<Error><Code>Moved</Code><Message>moved</Message></Error>"
            wrapped = b"<ErrorResponse>" + error + b"</ErrorResponse>"
            body = wrapped if self.command == "POST" else error
            headers = {"Location": target + self.path, "x-ms-error-code": "Moved"}
            self.reply(307, body, "application/xml", headers=headers)

        do_PUT = do_POST = do_HEAD = do_GET

    return Redirect


def test_redirects_are_not_followed(listener: CountingListener) -> None:
    # Loopback allowed, so only the no-redirect rule stands between the 307 and the
    # listener.
    egress = Egress(UrlPolicy(allow_insecure=True))
    with LoopbackServer(_redirecting(f"http://127.0.0.1:{listener.port}")) as stand_in:
        with pytest.raises(errors.FailedPrecondition) as exc:
            egress.session().get(f"{stand_in.url}/token", timeout=5)
        _assert_refused(exc.value, "ENDPOINT_REDIRECT")
        # What a caller asking for the 3xx itself (a CORS preflight) still gets.
        seen = egress.session().get(stand_in.url, allow_redirects=False, timeout=5)
        assert seen.status_code == 307
        # STS: botocore's S3 region redirector re-asks a 307ing endpoint without end.
        with pytest.raises((ClientError, BotoCoreError)):
            _client(egress, "sts", stand_in.url).get_caller_identity()
        with pytest.raises(AzureError):
            _blob(egress, f"{stand_in.url}/").get_service_properties()
    assert listener.accepted == 0


def test_the_cors_probe_passes_the_guard(listener: CountingListener) -> None:
    target = CorsTarget(f"http://{NAME}:{listener.port}/b/probe", lambda o: "rule", "how")
    with Egress(_rebinding(["127.0.0.1"])).session() as session:
        verdict = preflight(target, "https://app.example.com", session=session)
    assert not verdict.allowed and "refused" in verdict.detail
    assert listener.accepted == 0


# -- the seam itself --------------------------------------------------------------------


def test_guard_boto_refuses_a_client_it_cannot_guard() -> None:
    odd = SimpleNamespace(_endpoint=SimpleNamespace(http_session=object()))
    with pytest.raises(TypeError):
        Egress(UrlPolicy()).guard_boto(odd)


# -- end to end: the real server, real providers, a rebinding resolver ------------------


def test_the_service_refuses_a_rebound_endpoint_with_a_clear_audited_error(
    tmp_path: Path, listener: CountingListener
) -> None:
    # Registration runs the server's own policy (insecure: the name is not looked up);
    # the providers' connections run a strict policy whose DNS now says 127.0.0.1.
    strict = UrlPolicy(resolver=lambda host: ["127.0.0.1"])  # every name, now
    clock = SystemClock()
    aws = AwsProvider(AwsSettings.from_env({}), clock, strict)
    azure = AzureProvider(AzureConfig(url_policy=strict), clock)
    with start_server(tmp_path, providers=[aws, azure]) as srv:
        c = srv.client()
        doc = {**sample("S3_ACCESS_KEY"), "endpoint_url": f"http://{NAME}:{listener.port}"}
        cred = c.register_credential("acme", "S3_ACCESS_KEY", doc)
        mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
        with pytest.raises(errors.FailedPrecondition) as exc:
            list(c.list_prefix("acme", mount.mount_id))
        _assert_refused(exc.value)
        with pytest.raises(errors.FailedPrecondition) as exc:
            c.check_mount("acme", mount.mount_id, origin="https://app.example.com")
        _assert_refused(exc.value)
        shared = {
            **sample("AZURE_SHARED_KEY"),
            "account_url": f"http://acct.blob.core.windows.net:{listener.port}",
        }
        with pytest.raises(errors.FailedPrecondition) as exc:
            c.register_credential("acme", "AZURE_SHARED_KEY", shared)
        _assert_refused(exc.value)
        failures = [r for r in c.query_audit("acme") if r.outcome != "ok"]
    assert {r.action for r in failures} >= {"vault.register"}
    assert len(failures) >= 2
    assert listener.accepted == 0


def test_gcs_token_calls_pass_the_guard(tmp_path: Path, listener: CountingListener) -> None:
    # google-auth's JWT grant to the key's token_uri: allowed at registration (on the
    # allow-list), refused at connect time once the name answers 127.0.0.1.
    token_uri = f"http://{NAME}:{listener.port}/token"
    strict = UrlPolicy(
        token_uri_allowlist=frozenset({token_uri}), resolver=lambda host: ["127.0.0.1"]
    )
    env = {"BUCKETVAULT_GCS_TOKEN_URI_ALLOWLIST": token_uri}
    gcs = GcsProvider(SystemClock(), strict)
    with start_server(tmp_path, env=env, providers=[gcs]) as srv:
        c = srv.client()
        doc = {**sample("GCS_SERVICE_ACCOUNT"), "token_uri": token_uri}
        cred = c.register_credential("acme", "GCS_SERVICE_ACCOUNT", doc)
        mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
        with pytest.raises(errors.FailedPrecondition) as exc:
            list(c.list_prefix("acme", mount.mount_id))
        _assert_refused(exc.value)
    assert listener.accepted == 0
