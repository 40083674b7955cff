"""Coverage-guided fuzzing (atheris) of every parser that reads untrusted input.

One input drives one target, chosen by its first byte: the unsealed-secret decoder and
every kind's ``KindSpec.read`` (on raw JSON and on documents built field by field), the
object-key and prefix rules, the URL policy, and the sealed-blob opener. The property is
the service's: bad input ends in a ``BucketVaultError`` whose reason is catalogued and is
not INTERNAL, and whose text does not quote the input's secret values. Anything else
(another exception type, a leak) is a finding.

The test suite runs a bounded number of inputs (tests/core/test_fuzz.py); a longer run::

    python -m bucketvault.testing.fuzz --seconds 300 [--corpus DIR]
    python -m bucketvault.testing.fuzz crash-<hash>     # replay a finding
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import inspect
import json
import pkgutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bucketvault import objectkeys, providers
from bucketvault.crypto import hpke
from bucketvault.errors import BucketVaultError
from bucketvault.providers.kinds import KindSpec, ParseContext, decode_secret
from bucketvault.reasons import REASONS
from bucketvault.urlpolicy import UrlPolicy

_CATALOGUE = {r.name: r for r in REASONS}
# Secret values at least this long must not appear in an error's text.
_LEAK_MIN = 8
_TENANT = "acme"
_EXTERNAL_ID = "bv-ext-fuzz"


class Finding(AssertionError):
    """The property failed: a parser misbehaved on this input."""


def _fake_resolver(host: str) -> Sequence[str]:
    # Deterministic and offline: some names public, some private, some unresolvable.
    pick = hashlib.sha256(host.encode()).digest()[0] % 4
    return (["93.184.216.34"], ["10.0.0.1"], [], ["::ffff:127.0.0.1"])[pick]


STRICT = UrlPolicy(resolver=_fake_resolver)
LAX = UrlPolicy(allow_insecure=True, resolver=_fake_resolver)


@functools.cache
def kind_specs() -> tuple[KindSpec, ...]:
    """Every kind every provider folder declares, in name order."""
    specs: list[KindSpec] = []
    for info in sorted(pkgutil.iter_modules(providers.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"{providers.__name__}.{info.name}.kinds")
        except ModuleNotFoundError:
            continue
        kinds: Mapping[Any, KindSpec] = getattr(module, "KINDS", {})
        specs += [kinds[k] for k in sorted(kinds, key=str)]
    return tuple(specs)


def _context(policy: UrlPolicy) -> ParseContext:
    return ParseContext(_TENANT, policy, lambda: _EXTERNAL_ID)


def _secret_values(spec: KindSpec, document: Mapping[str, Any]) -> list[str]:
    values = [document.get(f.name) for f in spec.fields if f.secret]
    return [v for v in values if isinstance(v, str) and len(v) >= _LEAK_MIN]


def expect_refusal(call: Callable[[], object], secrets: Sequence[str] = ()) -> None:
    """Run call: success or a catalogued refusal that quotes no secret; else Finding."""
    try:
        call()
    except BucketVaultError as exc:
        reason = _CATALOGUE.get(exc.reason)
        if reason is None or exc.reason == "INTERNAL":
            raise Finding(f"uncatalogued or INTERNAL reason {exc.reason!r}") from exc
        text = f"{exc.message}\n{exc!r}\n{exc.metadata}"
        for secret in secrets:
            if secret in text:
                raise Finding(f"error {exc.reason} quotes a secret value") from exc


def _read_every_kind(document: dict[str, Any]) -> None:
    for spec in kind_specs():
        secrets = _secret_values(spec, document)
        for policy in (STRICT, LAX):
            expect_refusal(functools.partial(spec.read, document, _context(policy)), secrets)


def _target_json(data: bytes) -> None:
    """Raw bytes as an unsealed secret: decode, then every kind's read."""
    document: dict[str, Any] = {}

    def decode() -> None:
        document.update(decode_secret(data)[0])

    expect_refusal(decode)
    if document:
        _read_every_kind(document)


def _target_fields(data: bytes) -> None:
    """A document built field by field, so the parsers behind the declarations run."""
    values = data.decode("utf-8", "replace").split("\x00")
    for spec in kind_specs():
        document: dict[str, Any] = {}
        for i, f in enumerate(spec.fields):
            if i < len(values) and values[i] != "\x01":
                document[f.name] = values[i]
        secrets = _secret_values(spec, document)
        for policy in (STRICT, LAX):
            expect_refusal(functools.partial(spec.read, document, _context(policy)), secrets)


def _target_keys(data: bytes) -> None:
    """Object keys and prefixes (surrogates included) against a mount prefix."""
    text = data.decode("utf-8", "surrogatepass") if _is_utf8ish(data) else data.decode("latin-1")
    key, _, mount_prefix = text.partition("\x00")
    expect_refusal(lambda: objectkeys.check_key(key, mount_prefix))
    expect_refusal(lambda: objectkeys.check_prefix(key, mount_prefix))
    expect_refusal(lambda: objectkeys.check_mount_prefix(key))
    expect_refusal(lambda: objectkeys.check_key(mount_prefix + key, mount_prefix))


def _is_utf8ish(data: bytes) -> bool:
    try:
        data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def _target_url(data: bytes) -> None:
    """Endpoint URLs under the strict and the emulator policy; addresses at connect time."""
    url = data.decode("utf-8", "replace")
    for policy in (STRICT, LAX):
        expect_refusal(functools.partial(policy.check_endpoint, url, field="endpoint"))
        expect_refusal(functools.partial(policy.check_token_uri, url))
        expect_refusal(functools.partial(policy.check_address, url))


@functools.cache
def _keys() -> dict[hpke.Suite, tuple[bytes, bytes, bytes]]:
    out = {}
    for suite in hpke.Suite:
        private, public = hpke.generate(suite)
        out[suite] = (private, public, hpke.seal(suite, public, _TENANT, "K", b'{"a":"b"}'))
    return out


def _target_sealed(data: bytes) -> None:
    """Sealed blobs: arbitrary, a real one tampered with, and wrong tenant, kind or suite."""
    suites = list(hpke.Suite)
    suite = suites[data[0] % len(suites)] if data else suites[0]
    rest = data[1:]
    private, _, sealed = _keys()[suite]
    tampered = bytes(b ^ rest[i % len(rest)] for i, b in enumerate(sealed)) if rest else sealed
    cut = sealed[: len(rest)]
    tenant = rest[:8].decode("utf-8", "replace")
    other = suites[(suites.index(suite) + 1) % len(suites)]
    for blob in (rest, tampered, cut, sealed + rest):
        for who, kind in ((_TENANT, "K"), (tenant, "K"), (_TENANT, tenant)):
            expect_refusal(functools.partial(hpke.open_sealed, suite, private, who, kind, blob))
        wrong = functools.partial(hpke.open_sealed, other, _keys()[other][0], _TENANT, "K", blob)
        expect_refusal(wrong)
    expect_refusal(lambda: hpke.seal(suite, rest, _TENANT, "K", b"{}"))


TARGETS: tuple[Callable[[bytes], None], ...] = (
    _target_json,
    _target_fields,
    _target_keys,
    _target_url,
    _target_sealed,
)


def one_input(data: bytes) -> None:
    """The fuzz entry point: the first byte picks the target, the rest is its input."""
    if not data:
        return
    TARGETS[data[0] % len(TARGETS)](data[1:])


def seeds() -> list[bytes]:
    """Starting inputs for each target: well-formed values the mutator can break."""
    sas = "sv=2025-05-05&ss=b&srt=co&sp=rl&se=2099-01-01T00:00:00Z&st=2020-01-01T00:00:00Z&sig=c2ln"
    documents = [
        {"role_arn": "arn:aws:iam::123456789012:role/images", "external_id": _EXTERNAL_ID},
        {"access_key_id": "AKIAEXAMPLE1", "secret_access_key": "s3secretvalue"},
        {"account_url": "https://acct.blob.core.windows.net", "sas_token": sas},
        {"access_id": "GOOG1EXAMPLE", "secret": "hmacsecretvalue"},
        {"type": "service_account", "client_email": "a@b", "private_key": "-----BEGIN"},
    ]
    field_rows = [
        "arn:aws:iam::123456789012:role/r\x00" + _EXTERNAL_ID,
        "https://acct.blob.core.windows.net\x00" + sas,
        "https://acct.blob.core.windows.net\x00acct\x00" + "a" * 24 + "==",
        "https://127.0.0.1:10000/devstoreaccount1\x00t-1\x00c-1\x00secretvalue",
        "AKIAEXAMPLE1\x00secretvalue\x00https://0x7f.1\x00us-east-1",
    ]
    urls = [
        "https://s3.example.com/",
        "https://good@169.254.169.254",
        "https://[::ffff:127.0.0.1]:443",
        "https://0x7f.1",
        "http://127.0.0.1:10000/devstoreaccount1",
        "169.254.169.254",
    ]
    keys = ["img/a.jpg\x00img/", "img/../b\x00img/", "a\x7fb\x00", "x" * 300 + "\x00"]
    out = [bytes([0]) + json.dumps(d).encode() for d in documents]
    out += [bytes([1]) + row.encode() for row in field_rows]
    out += [bytes([2]) + k.encode() for k in keys]
    out += [bytes([3]) + u.encode() for u in urls]
    out += [bytes([4, s]) + bytes(range(40)) for s in range(len(hpke.Suite))]
    return out


# Coverage comes from these modules only: instrumenting everything loaded (grpc,
# cryptography, boto) takes minutes before the first input.
_INSTRUMENTED = ("bucketvault.", "urllib.parse", "ipaddress", "json.decoder", "base64")


def _instrument(atheris: Any) -> None:
    seen: set[int] = set()

    def code_of(value: object) -> None:
        for inner in (getattr(value, "fget", None), getattr(value, "__func__", None), value):
            if inspect.isfunction(inner) and id(inner) not in seen:
                seen.add(id(inner))
                atheris.instrument_func(inner)

    for name, module in list(sys.modules.items()):
        if not name.startswith(_INSTRUMENTED) or name.startswith("bucketvault.v1"):
            continue
        for value in list(vars(module).values()):
            if getattr(value, "__module__", None) != name:
                continue
            if inspect.isclass(value):
                for member in list(vars(value).values()):
                    code_of(member)
            else:
                code_of(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Fuzz for --runs inputs or --seconds; the corpus directory is seeded first."""
    parser = argparse.ArgumentParser(prog="python -m bucketvault.testing.fuzz")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs")
    parser.add_argument("--seconds", type=int, default=0, help="stop after this long")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's random seed")
    parser.add_argument("--corpus", type=Path, help="corpus directory (kept; default: temporary)")
    args, extra = parser.parse_known_args(argv)
    import atheris  # type: ignore[import-untyped]  # noqa: PLC0415  (dev dependency)

    with tempfile.TemporaryDirectory(prefix="bv-fuzz-") as tmp:
        corpus = args.corpus or Path(tmp)
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds()):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
        kind_specs()
        _keys()
        libfuzzer = [sys.argv[0], str(corpus), "-max_len=4096", f"-seed={args.seed}"]
        if any(Path(arg).is_file() for arg in extra):
            # Replaying crash-* files: libFuzzer runs them one by one, without a corpus.
            libfuzzer = [sys.argv[0]]
        if args.runs:
            libfuzzer.append(f"-runs={args.runs}")
        if args.seconds:
            libfuzzer.append(f"-max_total_time={args.seconds}")
        _instrument(atheris)
        atheris.Setup([*libfuzzer, *extra], one_input)
        atheris.Fuzz()
    return 0


__all__ = ["STRICT", "TARGETS", "Finding", "expect_refusal", "kind_specs", "main", "one_input"]

if __name__ == "__main__":
    raise SystemExit(main())
