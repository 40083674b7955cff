"""SSRF at validation time: hostile endpoints are refused before anything connects.

Unit tests of urlpolicy (literal spellings, embedded IPv4, names, the injectable resolver,
check_address), properties over every spelling of a forbidden address, and an end-to-end
test through the real server and real providers proving that a refused endpoint is
refused before any connection: a listener on a loopback port records that nothing came.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest
from core.secrets_fixtures import sample
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketvault import errors
from bucketvault.reasons import REASONS
from bucketvault.testing.loopback import CountingListener
from bucketvault.testing.server import start_server
from bucketvault.urlpolicy import UrlPolicy, address_problem, check_address

CATALOGUE = {r.name: r for r in REASONS}
PUBLIC = "93.184.216.34"


def _resolver(table: dict[str, Sequence[str]]) -> UrlPolicy:
    return UrlPolicy(resolver=lambda host: table.get(host, ()))


STRICT = _resolver({"s3.example.com": [PUBLIC], "v6.example.com": ["2606:4700::1111"]})


def _refused(policy: UrlPolicy, url: str) -> errors.BucketVaultError:
    with pytest.raises(errors.InvalidArgument) as exc:
        policy.check_endpoint(url, field="endpoint")
    error = exc.value
    assert error.reason in CATALOGUE
    assert type(error) is CATALOGUE[error.reason].error
    assert error.field == "endpoint"
    return error


REFUSED = {
    # scheme and shape
    "http://s3.example.com": "INSECURE_ENDPOINT",
    "ftp://s3.example.com": "INVALID_ENDPOINT",
    "s3.example.com": "INVALID_ENDPOINT",
    "https://": "INVALID_ENDPOINT",
    "https://s3.example.com?x=1": "INVALID_ENDPOINT",
    "https://s3.example.com#f": "INVALID_ENDPOINT",
    "https://[::1": "INVALID_ENDPOINT",
    "https://s3.example.com:99999": "INVALID_ENDPOINT",
    "https://s3.example.com:0": "INVALID_ENDPOINT",
    "https://s3.example.com:": "INVALID_ENDPOINT",
    "https://[::1]x/": "INVALID_ENDPOINT",
    "https://s3.exa mple.com": "INVALID_ENDPOINT",
    "https://s3.exa\tmple.com": "INVALID_ENDPOINT",
    "https://s3.example.com\\@169.254.169.254": "INVALID_ENDPOINT",
    "https://bücher.example": "INVALID_ENDPOINT",
    "https://a..b": "INVALID_ENDPOINT",
    # userinfo tricks
    "https://good@169.254.169.254": "INVALID_ENDPOINT",
    "https://s3.example.com@169.254.169.254/": "INVALID_ENDPOINT",
    "https://user:pw@s3.example.com": "INVALID_ENDPOINT",
    "https://@s3.example.com": "INVALID_ENDPOINT",
    # loopback, private, link-local, CGNAT, multicast, unspecified, metadata literals
    "https://127.0.0.1": "FORBIDDEN_ENDPOINT",
    "https://10.1.2.3": "FORBIDDEN_ENDPOINT",
    "https://172.16.0.1": "FORBIDDEN_ENDPOINT",
    "https://192.168.1.1:8443": "FORBIDDEN_ENDPOINT",
    "https://100.64.0.1": "FORBIDDEN_ENDPOINT",
    "https://100.100.100.200": "FORBIDDEN_ENDPOINT",
    "https://224.0.0.1": "FORBIDDEN_ENDPOINT",
    "https://0.0.0.0": "FORBIDDEN_ENDPOINT",
    "https://169.254.169.254/latest/meta-data/": "FORBIDDEN_ENDPOINT",
    "https://168.63.129.16": "FORBIDDEN_ENDPOINT",
    "https://[::1]": "FORBIDDEN_ENDPOINT",
    "https://[::]": "FORBIDDEN_ENDPOINT",
    "https://[fe80::1%25eth0]": "FORBIDDEN_ENDPOINT",
    "https://[fd00:ec2::254]": "FORBIDDEN_ENDPOINT",
    "https://[ff02::1]": "FORBIDDEN_ENDPOINT",
    # IPv6 forms embedding a forbidden IPv4
    "https://[::ffff:127.0.0.1]": "FORBIDDEN_ENDPOINT",
    "https://[::ffff:a9fe:a9fe]": "FORBIDDEN_ENDPOINT",
    "https://[::127.0.0.1]": "FORBIDDEN_ENDPOINT",
    "https://[::7f00:1]": "FORBIDDEN_ENDPOINT",
    "https://[2002:a9fe:a9fe::1]": "FORBIDDEN_ENDPOINT",
    "https://[2002:7f00:1::]": "FORBIDDEN_ENDPOINT",
    "https://[64:ff9b::169.254.169.254]": "FORBIDDEN_ENDPOINT",
    "https://[64:ff9b::a00:1]": "FORBIDDEN_ENDPOINT",
    "https://[64:ff9b:1::1]": "FORBIDDEN_ENDPOINT",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]": "FORBIDDEN_ENDPOINT",
    # decimal / octal / hex / short IPv4
    "https://2130706433": "FORBIDDEN_ENDPOINT",
    "https://0x7f.1": "FORBIDDEN_ENDPOINT",
    "https://0x7f000001": "FORBIDDEN_ENDPOINT",
    "https://017700000001": "FORBIDDEN_ENDPOINT",
    "https://0177.0.0.1": "FORBIDDEN_ENDPOINT",
    "https://127.1": "FORBIDDEN_ENDPOINT",
    "https://2852039166": "FORBIDDEN_ENDPOINT",
    "https://0xa9.0xfe.0xa9.0xfe": "FORBIDDEN_ENDPOINT",
    "https://0": "FORBIDDEN_ENDPOINT",
    "https://1.2.3.4.5": "INVALID_ENDPOINT",
    "https://256.1.1.1": "INVALID_ENDPOINT",
    "https://08.1.1.1": "INVALID_ENDPOINT",
    "https://s3.123": "INVALID_ENDPOINT",
    # names: metadata, local, trailing dot, upper case
    "https://localhost": "FORBIDDEN_ENDPOINT",
    "https://LOCALHOST.": "FORBIDDEN_ENDPOINT",
    "https://metadata.google.internal": "FORBIDDEN_ENDPOINT",
    "https://Metadata.Google.Internal.": "FORBIDDEN_ENDPOINT",
    "https://metadata": "FORBIDDEN_ENDPOINT",
    "https://metadata.goog": "FORBIDDEN_ENDPOINT",
    "https://instance-data.ec2.internal": "FORBIDDEN_ENDPOINT",
    "https://api.localhost": "FORBIDDEN_ENDPOINT",
    "https://printer.local": "FORBIDDEN_ENDPOINT",
    "https://kubernetes.default.svc": "FORBIDDEN_ENDPOINT",
    "https://anything.internal": "FORBIDDEN_ENDPOINT",
    # names that resolve to private addresses, or not at all
    "https://rebind.example": "FORBIDDEN_ENDPOINT",
    "https://mixed.example": "FORBIDDEN_ENDPOINT",
    "https://v6private.example": "FORBIDDEN_ENDPOINT",
    "https://nowhere.example": "ENDPOINT_UNRESOLVABLE",
}

HOSTILE_DNS = _resolver(
    {
        "rebind.example": ["169.254.169.254"],
        "mixed.example": [PUBLIC, "10.0.0.7"],
        "v6private.example": ["::ffff:127.0.0.1"],
        "s3.example.com": [PUBLIC],
    }
)


@pytest.mark.parametrize(("url", "reason"), REFUSED.items(), ids=list(REFUSED))
def test_hostile_endpoints_are_refused(url: str, reason: str) -> None:
    assert _refused(HOSTILE_DNS, url).reason == reason


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.example.com",
        "https://S3.Example.COM./",
        "https://s3.example.com:8443/base",
        "https://8.8.8.8",
        "https://[2606:4700::1111]:443",
        "https://[::ffff:8.8.8.8]",
        "https://v6.example.com",
    ],
)
def test_public_endpoints_pass(url: str) -> None:
    policy = _resolver({"s3.example.com": [PUBLIC], "v6.example.com": ["2606:4700::1111"]})
    assert policy.check_endpoint(url, field="endpoint") == url.rstrip("/")


def test_insecure_mode_allows_emulators_but_not_malformed_urls() -> None:
    lax = UrlPolicy(allow_insecure=True, resolver=lambda host: ())
    for url in ("http://127.0.0.1:10000/devstoreaccount1", "http://localhost:4566", "http://s3"):
        assert lax.check_endpoint(url, field="endpoint") == url
    for url in ("https://good@169.254.169.254", "https://[::1", "http://a b", "https://a:99999"):
        assert _refused(lax, url).reason == "INVALID_ENDPOINT"


def test_the_resolver_is_asked_only_for_names_and_only_when_strict() -> None:
    asked: list[str] = []
    policy = UrlPolicy(resolver=lambda host: asked.append(host) or [PUBLIC])
    policy.check_endpoint("https://S3.Example.com./x", field="endpoint")
    policy.check_endpoint("https://8.8.8.8", field="endpoint")
    _refused(policy, "https://metadata.google.internal")
    UrlPolicy(allow_insecure=True, resolver=policy.resolver).check_endpoint(
        "http://x.example", field="endpoint"
    )
    assert asked == ["s3.example.com"]


def test_refusals_never_quote_the_url() -> None:
    mark = "zq9leakmark"
    for url in (
        f"https://{mark}@169.254.169.254",
        f"https://{mark}.internal",
        f"https://[::1{mark}",
        f"http://{mark}.example",
        f"https://{mark}.example",
    ):
        error = _refused(STRICT, url)
        assert mark not in error.message and mark not in repr(error)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "100.64.0.1",
        "169.254.169.254",
        "169.254.170.2",
        "168.63.129.16",
        "224.0.0.251",
        "255.255.255.255",
        "0.0.0.0",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd00:ec2::254",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:c0a8:101::",
        "64:ff9b::7f00:1",
        "::10.0.0.1",
        "2001:db8::1",
        "ff05::2",
    ],
)
def test_check_address_refuses_what_a_connection_must_not_reach(address: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        check_address(address)
    assert exc.value.reason == "FORBIDDEN_ENDPOINT"


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC, "2606:4700::1111", "::ffff:1.1.1.1"])
def test_check_address_passes_public_addresses(address: str) -> None:
    check_address(address)
    UrlPolicy().check_address(address)


def test_check_address_refuses_garbage_and_insecure_mode_skips_it() -> None:
    for garbage in ("", "localhost", "127.1", "1.2.3.4:80", "[::1]"):
        with pytest.raises(errors.InvalidArgument) as exc:
            check_address(garbage)
        assert exc.value.reason == "INVALID_ENDPOINT"
    UrlPolicy(allow_insecure=True).check_address("127.0.0.1")
    with pytest.raises(errors.InvalidArgument):
        UrlPolicy().check_address("127.0.0.1")


# -- properties: every spelling of a forbidden address is refused ---------------------

FORBIDDEN_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


@st.composite
def forbidden_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = draw(st.sampled_from(FORBIDDEN_V4))
    offset = draw(st.integers(0, net.num_addresses - 1))
    return ipaddress.IPv4Address(int(net.network_address) + offset)


def _number(value: int, style: str) -> str:
    return {"dec": str(value), "hex": hex(value), "oct": "0" + oct(value)[2:]}[style]


@st.composite
def spelled_v4(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """address in one of the forms inet_aton and browsers accept."""
    value = int(address)
    octets = list(address.packed)
    parts_count = draw(st.integers(1, 4))
    head = octets[: parts_count - 1]
    rest = value & ((1 << (8 * (5 - parts_count))) - 1)
    parts = [*head, rest]
    styles = draw(st.lists(st.sampled_from(["dec", "hex", "oct"]), min_size=4, max_size=4))
    return ".".join(_number(p, s) for p, s in zip(parts, styles, strict=False))


@st.composite
def spelled_v6(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """address embedded in IPv6 (mapped, compatible, 6to4, NAT64), compressed or not."""
    v4 = int(address)
    form = draw(st.sampled_from(["mapped", "compatible", "6to4", "nat64"]))
    value = {
        "mapped": (0xFFFF << 32) | v4,
        "compatible": v4,
        "6to4": (0x2002 << 112) | (v4 << 80) | draw(st.integers(0, (1 << 80) - 1)),
        "nat64": (0x64FF9B << 96) | v4,
    }[form]
    ip = ipaddress.IPv6Address(value)
    text = draw(st.sampled_from([ip.compressed, ip.exploded, ip.compressed.upper()]))
    return f"[{text}]"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_spelling_of_a_forbidden_ipv4_is_refused(data: st.DataObject) -> None:
    address = data.draw(forbidden_v4())
    host = data.draw(st.one_of(spelled_v4(address), spelled_v6(address)))
    port = data.draw(st.sampled_from(["", ":443", ":8080"]))
    dot = data.draw(st.sampled_from(["", "."])) if not host.startswith("[") else ""
    url = f"https://{host}{dot}{port}/"
    error = _refused(STRICT, url)
    # 0.0.0.0 compatible-form is "::", which is unspecified: still FORBIDDEN.
    assert error.reason == "FORBIDDEN_ENDPOINT", url


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**32 - 1)
    .map(ipaddress.IPv4Address)
    .filter(lambda a: address_problem(a) is None),
    st.data(),
)
def test_spellings_of_a_public_ipv4_mean_that_address(
    address: ipaddress.IPv4Address, data: st.DataObject
) -> None:
    host = data.draw(spelled_v4(address))
    # What the policy reads is what the C library would connect to.
    assert ipaddress.IPv4Address(socket.inet_aton(host)) == address
    STRICT.check_endpoint(f"https://{host}", field="endpoint")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_either_accepted_or_refused_with_a_catalogued_reason(text: str) -> None:
    for url in (text, f"https://{text}", f"https://{text}.example.com"):
        try:
            STRICT.check_endpoint(url, field="endpoint")
        except errors.BucketVaultError as exc:
            assert exc.reason in CATALOGUE and exc.reason != "INTERNAL"
            assert type(exc) is CATALOGUE[exc.reason].error


# -- end to end: refused before any connection ------------------------------------------


def _spellings(port: int) -> list[str]:
    return [
        f"https://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}",
        f"https://127.1:{port}",
        f"https://2130706433:{port}",
        f"https://0x7f.1:{port}",
        f"https://017700000001:{port}",
        f"https://[::ffff:127.0.0.1]:{port}",
        f"https://[::1]:{port}",
        f"https://localhost:{port}",
        f"https://LocalHost.:{port}",
        f"https://good@127.0.0.1:{port}",
        f"https://[2002:7f00:1::]:{port}",
    ]


def test_refused_endpoints_are_refused_before_any_connection(
    tmp_path: Path, listener: CountingListener
) -> None:
    # Real providers, insecure endpoints off: what production runs.
    env = {"BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS": "0"}
    with start_server(tmp_path, env=env) as srv:
        c = srv.client()
        plain = c.register_credential(
            "acme", "S3_ACCESS_KEY", {**sample("S3_ACCESS_KEY"), "endpoint_url": ""}
        )
        for url in _spellings(listener.port):
            doc = {**sample("S3_ACCESS_KEY"), "endpoint_url": url}
            with pytest.raises(errors.InvalidArgument) as exc:
                c.register_credential("acme", "S3_ACCESS_KEY", doc)
            assert (exc.value.field, exc.value.reason in CATALOGUE) == ("secret.endpoint_url", True)
            azure = {**sample("AZURE_SHARED_KEY"), "account_url": f"{url}/acct"}
            with pytest.raises(errors.InvalidArgument):
                c.register_credential("acme", "AZURE_SHARED_KEY", azure)
            with pytest.raises(errors.InvalidArgument) as exc:
                c.create_mount(
                    "acme", name="m", bucket="b", credential_id=plain.credential_id, endpoint=url
                )
            assert exc.value.field == "endpoint"
        assert [x.credential_id for x in c.list_credentials("acme")] == [plain.credential_id]
        refusals = [r for r in c.query_audit("acme") if r.action == "vault.register"]
        assert len([r for r in refusals if r.outcome != "ok"]) == 2 * len(_spellings(0))
    assert listener.accepted == 0


def test_the_listener_would_have_seen_a_connection(
    tmp_path: Path, listener: CountingListener
) -> None:
    # The control: with insecure endpoints allowed the same endpoint is called.
    with start_server(tmp_path, env={"AWS_MAX_ATTEMPTS": "1"}) as srv:
        c = srv.client()
        doc = {**sample("S3_ACCESS_KEY"), "endpoint_url": f"http://127.0.0.1:{listener.port}"}
        cred = c.register_credential("acme", "S3_ACCESS_KEY", doc)
        mount = c.create_mount("acme", name="m", bucket="b", credential_id=cred.credential_id)
        c.check_mount("acme", mount.mount_id)
    assert listener.accepted >= 1
