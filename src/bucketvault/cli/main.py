"""The `bucketvault` command: `serve`, operator commands that call a running server, and
`token create` / `policy explain`, which work on the policy file offline.

Human-readable tables by default, `--json` for scripts. Credentials are sealed locally
by the SDK before they leave this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bucketvault.audit.archive import ArchiveError, read_archive, verify_archive
from bucketvault.audit.signing import TrustedKeys, load_public_pem
from bucketvault.auth.authn import load_policy_file
from bucketvault.auth.explain import explain
from bucketvault.auth.tokens import create_token
from bucketvault.cli import keys
from bucketvault.cli.links import add_link_parser, run_link
from bucketvault.client import BucketVaultClient, tls_credentials
from bucketvault.config import Config
from bucketvault.errors import BucketVaultError
from bucketvault.models import Role
from bucketvault.observe.logs import configure_logging
from bucketvault.service import ADMIN_TOKEN_FILE, build_service
from bucketvault.v1 import common_pb2

DEFAULT_ADDRESS = "127.0.0.1:50051"
ROLES = tuple(r.value for r in Role)
# The wire enum is the one list of kind names.
KINDS = tuple(
    n
    for n in common_pb2.CredentialKind.keys()  # noqa: SIM118 - an enum wrapper, not a dict
    if n != "CREDENTIAL_KIND_UNSPECIFIED"
)


def _serve(args: argparse.Namespace) -> int:
    # JSON lines unless BUCKETVAULT_LOG_FORMAT=text (observe/logs.py).
    configure_logging(os.environ)
    config = Config.from_env(os.environ, listen=args.listen or "", data_dir=args.data_dir or "")
    service = build_service(config)
    # Handlers first, then the "listening" line: whoever waits for that line (a supervisor,
    # a test) may signal at once, and SIGHUP's default action would end the process.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # The conventional "re-read your configuration": the policy file, here.
    signal.signal(signal.SIGHUP, lambda *_: service.reload_policy())
    token_file = config.data_dir / ADMIN_TOKEN_FILE
    print(f"bucketvault: listening on {service.address}", flush=True)
    if token_file.exists():
        print(f"bucketvault: admin token in {token_file}", flush=True)
    tls_flag = " --tls-ca <the CA of the server certificate>" if config.tls else ""
    print(
        "bucketvault: try  .venv/bin/bucketvault --address "
        f"{service.address}{tls_flag} --token-file {token_file} credentials list --tenant acme",
        flush=True,
    )
    stop.wait()
    # NOT_SERVING, refuse new calls, drain in-flight ones, flush and checkpoint the audit.
    service.shutdown(config.drain_seconds)
    return 0


def _policy_path(args: argparse.Namespace) -> Path:
    # The file the server reads: BUCKETVAULT_POLICY, else <data dir>/policy.json.
    if args.policy:
        return Path(args.policy)
    return Config.from_env(os.environ, data_dir=args.data_dir or "").policy_file


def _token_create(args: argparse.Namespace) -> int:
    """Print a new token once (stdout); the policy file keeps only its hash."""
    entry: dict[str, Any] = {"name": args.name, "roles": sorted(set(args.role))}
    limits: dict[str, Any] = {}
    if args.mount:
        limits["mounts"] = args.mount
    if args.prefix:
        limits["prefixes"] = args.prefix
    if args.method:
        limits["methods"] = sorted(set(args.method))
    if args.max_ttl is not None:
        limits["max_ttl_seconds"] = args.max_ttl
    if limits:
        entry["grants"] = [{"tenant": t, **limits} for t in args.tenant]
    else:
        entry["tenants"] = args.tenant
    path = _policy_path(args)
    token = create_token(path, entry, replace=args.replace)
    print(token, flush=True)
    print(
        f"bucketvault: principal {args.name!r} written to {path} (the token is not stored: "
        "keep it now); a running server picks it up within seconds, or on SIGHUP",
        file=sys.stderr,
    )
    return 0


EXPLAIN_COLS = ("principal", "tenant", "roles", "mounts", "prefixes", "methods", "max_ttl_seconds")


def _policy_explain(args: argparse.Namespace) -> int:
    """Who may do what, from the policy file, as the server decides it."""
    if bool(args.principal) == bool(args.tenant):
        raise SystemExit("bucketvault: policy explain needs --principal or --tenant")
    if args.mount and not args.tenant:
        raise SystemExit("bucketvault: --mount needs --tenant")
    policy = load_policy_file(_policy_path(args))
    rules = explain(
        policy, principal=args.principal, tenant=args.tenant, mounts=tuple(args.mount or ())
    )
    rows = [r.to_json() for r in rules]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    flat = [
        {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()}
        for row in rows
    ]
    print(_table(flat, EXPLAIN_COLS))
    return 0


def _channel_credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    try:
        return tls_credentials(
            ca=args.tls_ca or None, cert=args.tls_cert or None, key=args.tls_key or None
        )
    except ValueError:
        raise SystemExit("bucketvault: --tls-cert and --tls-key go together") from None
    except OSError as exc:
        raise SystemExit(f"bucketvault: cannot read TLS file {exc.filename}") from None


def _token(args: argparse.Namespace) -> str:
    token = os.environ.get("BUCKETVAULT_TOKEN", "")
    if token:
        return token
    named = args.token_file or os.environ.get("BUCKETVAULT_TOKEN_FILE", "")
    if not named and args.tls_cert:
        # A client certificate names the caller; the default admin token file lying in
        # the working directory must not silently take over.
        return ""
    path = Path(named or Path(".bucketvault") / ADMIN_TOKEN_FILE)
    try:
        return path.read_text().strip()
    except OSError:
        raise SystemExit(
            f"bucketvault: cannot read token file {path} (or set BUCKETVAULT_TOKEN)"
        ) from None


def _client(args: argparse.Namespace) -> BucketVaultClient:
    return BucketVaultClient(args.address, _token(args), credentials=_channel_credentials(args))


def _health(args: argparse.Namespace) -> int:
    """grpc.health.v1 Check (no token needed): print the status, exit 0 only if SERVING."""
    credentials = _channel_credentials(args)
    channel = (
        grpc.secure_channel(args.address, credentials)
        if credentials
        else grpc.insecure_channel(args.address)
    )
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=args.service or ""), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            print(f"bucketvault: health check failed: {code}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(json.dumps({"status": status}) if args.json else status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


def _dict(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _emit(args: argparse.Namespace, items: Iterable[Any], columns: Sequence[str]) -> None:
    rows = [_dict(m) for m in items]
    if args.json:
        print(json.dumps(rows if len(rows) != 1 or args.many else rows[0], indent=2))
    elif len(rows) == 1 and not args.many:
        for k, v in rows[0].items():
            print(f"{k:>22}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    else:
        print(_table(rows, columns))


CRED_COLS = ("credential_id", "kind", "state", "display_name", "fingerprint", "created_at")
MOUNT_COLS = ("mount_id", "name", "bucket", "prefix", "credential_id", "version")
AUDIT_COLS = (
    "time",
    "principal",
    "tenant",
    "action",
    "resource",
    "outcome",
    "status",
    "reason",
    "request_id",
)

# What a command fetches: the messages to print, from the parsed arguments and a client.
Fetch = Callable[[argparse.Namespace, BucketVaultClient], Iterable[Any]]


def _register(args: argparse.Namespace, c: BucketVaultClient) -> Iterable[Any]:
    raw = sys.stdin.buffer.read() if args.from_file == "-" else Path(args.from_file).read_bytes()
    return [
        c.register_credential(
            args.tenant,
            args.kind,
            raw,
            display_name=args.name or "",
            idempotency_key=args.idempotency_key or "",
        )
    ]


def _create_mount(args: argparse.Namespace, c: BucketVaultClient) -> Iterable[Any]:
    return [
        c.create_mount(
            args.tenant,
            name=args.name,
            bucket=args.bucket,
            credential_id=args.credential,
            prefix=args.prefix or "",
            region=args.region or "",
            endpoint=args.endpoint or "",
            max_ttl_seconds=args.max_ttl or 0,
            allowed_methods=[x for x in (args.methods or "").split(",") if x],
            allow_credential_lifetime=args.allow_credential_lifetime,
            cache_stable_urls=not args.no_stable_urls,
        )
    ]


def _query_audit(args: argparse.Namespace, c: BucketVaultClient) -> Iterable[Any]:
    return c.query_audit(
        args.tenant or "",
        action=args.action or "",
        limit=args.limit or 0,
        outcome=args.outcome or "",
    )


# (command, subcommand) -> (fetch, table columns, whether the answer is a list). A list is
# printed as a table even with one row; a single answer as "key: value" lines.
TABLES: dict[tuple[str, str], tuple[Fetch, Sequence[str], bool]] = {
    ("credentials", "register"): (_register, CRED_COLS, False),
    ("credentials", "list"): (lambda a, c: c.list_credentials(a.tenant), CRED_COLS, True),
    ("credentials", "show"): (lambda a, c: [c.get_credential(a.tenant, a.id)], CRED_COLS, False),
    ("credentials", "revoke"): (
        lambda a, c: [c.revoke_credential(a.tenant, a.id, a.reason or "")],
        CRED_COLS,
        False,
    ),
    ("mounts", "create"): (_create_mount, MOUNT_COLS, False),
    ("mounts", "list"): (lambda a, c: c.list_mounts(a.tenant), MOUNT_COLS, True),
    ("mounts", "show"): (lambda a, c: [c.get_mount(a.tenant, a.id)], MOUNT_COLS, False),
    ("mounts", "rebind"): (
        lambda a, c: [c.rebind_mount(a.tenant, a.id, a.credential, a.expected_version)],
        MOUNT_COLS,
        False,
    ),
    ("mounts", "check"): (
        lambda a, c: [c.check_mount(a.tenant, a.id)],
        ("state", "reason", "detail"),
        False,
    ),
    ("audit", "query"): (_query_audit, AUDIT_COLS, True),
}


def _verdict(args: argparse.Namespace, fields: dict[str, Any]) -> int:
    """Print the verdict (every field, ok included); exit 1 unless ok, so that
    `bucketvault audit verify && ...` never passes a tampered log."""
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        for k, v in fields.items():
            print(f"{k:>24}: {v}")
    return 0 if fields.get("ok") is True else 1


def _verify(args: argparse.Namespace, c: BucketVaultClient) -> int:
    result = c.verify_audit(full=args.full)
    return _verdict(
        args,
        MessageToDict(
            result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        ),
    )


def _verify_file(args: argparse.Namespace) -> int:
    """Offline: an archive or export file's chains and checkpoint signatures, no server."""
    try:
        pinned = (
            TrustedKeys.of(load_public_pem(Path(args.public_key).read_bytes()))
            if args.public_key
            else None
        )
        with open(args.file, encoding="utf-8") as fh:
            verdict = verify_archive(read_archive(fh), pinned)
    except (OSError, ValueError, ArchiveError) as exc:
        return _verdict(args, {"ok": False, "detail": f"cannot read {args.file}: {exc}"})
    fields = dataclasses.asdict(verdict)
    fields["unanchored"] = list(verdict.unanchored)
    return _verdict(args, fields)


def _export(args: argparse.Namespace, c: BucketVaultClient) -> int:
    since = datetime.fromisoformat(args.since) if args.since else None
    until = datetime.fromisoformat(args.until) if args.until else None
    for line in c.export_audit(since=since, until=until):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


def _run(args: argparse.Namespace) -> int:
    args.many = False
    with _client(args) as c:
        cmd = args.cmd
        table = TABLES.get((cmd, getattr(args, "sub", "")))
        if table is not None:
            fetch, columns, args.many = table
            _emit(args, fetch(args, c), columns)
        elif (cmd, getattr(args, "sub", "")) == ("audit", "verify"):
            return _verify(args, c)
        elif (cmd, getattr(args, "sub", "")) == ("audit", "export"):
            return _export(args, c)
        elif (cmd, getattr(args, "sub", "")) == ("audit", "public-key"):
            print(c.audit_key().public_key_pem, end="")
        elif cmd == "trust-policy":
            p = c.trust_policy(args.tenant)
            if args.json:
                print(json.dumps(_dict(p), indent=2))
            else:
                print(f"ExternalId: {p.external_id}\nPrincipal:  {p.service_principal_arn}\n")
                print(p.policy_json)
        elif cmd == "onboarding":
            o = c.onboarding(args.tenant, args.kind)
            if args.json:
                print(json.dumps(_dict(o), indent=2))
            else:
                print(f"Grant access to: {o.identity}\n")
                for number, step in enumerate(o.steps, 1):
                    print(f"{number}. {step}")
                if o.links:
                    print()
                    print(
                        _table(
                            [{"name": k, "value": v} for k, v in o.links.items()], ("name", "value")
                        )
                    )
        elif cmd == "sign":
            s = c.sign_url(
                args.tenant, args.mount, args.key, method=args.method, ttl_seconds=args.ttl or 0
            )
            if args.json:
                print(json.dumps(_dict(s), indent=2))
            else:
                print(s.url)
                for k, v in s.required_headers.items():
                    print(f"# header {k}: {v}", file=sys.stderr)
        elif cmd == "ls":
            _ls(args, c)
        elif cmd == "link":
            return run_link(args, c)
    return 0


def _ls(args: argparse.Namespace, c: BucketVaultClient) -> None:
    show_progress = sys.stderr.isatty() and not args.json
    count = 0
    for page in c.list_prefix(
        args.tenant,
        args.mount,
        prefix=args.prefix or "",
        delimiter=args.delimiter or "",
        page_token=args.page_token or "",
        sign_ttl_seconds=args.sign_ttl or 0,
    ):
        for p in page.common_prefixes:
            print(json.dumps({"prefix": p}) if args.json else f"{'PRE':>12}  {p}")
        for e in page.entries:
            if args.json:
                print(json.dumps(_dict(e)))
            else:
                # A listed key the service refuses to sign says why instead of a URL.
                note = (
                    f"  {e.url}" if e.url else (f"  (no URL: {e.url_error})" if e.url_error else "")
                )
                print(f"{e.size:>12}  {e.key}{note}")
        count += len(page.entries)
        if show_progress:
            # A one-line progress counter on stderr; stdout stays clean for pipes.
            print(f"\r  listed {count} objects...", end="", file=sys.stderr, flush=True)
    if show_progress:
        print(f"\r  listed {count} objects.    ", file=sys.stderr)


def _version() -> str:
    # The installed distribution's version (pyproject.toml), not a copy kept in the code.
    try:
        return version("bucketvault")
    except PackageNotFoundError:
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="bucketvault", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument("--address", default=os.environ.get("BUCKETVAULT_ADDRESS", DEFAULT_ADDRESS))
    p.add_argument(
        "--token-file", help="file holding the bearer token (default .bucketvault/admin.token)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    env = os.environ.get
    p.add_argument(
        "--tls-ca",
        default=env("BUCKETVAULT_TLS_CA", ""),
        help="CA bundle (PEM) for the server's certificate; any --tls-* flag turns TLS on",
    )
    p.add_argument(
        "--tls-cert", default=env("BUCKETVAULT_TLS_CERT", ""), help="client certificate (mTLS)"
    )
    p.add_argument(
        "--tls-key", default=env("BUCKETVAULT_TLS_KEY", ""), help="client certificate's key"
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the gRPC server")
    s.add_argument("--listen")
    s.add_argument("--data-dir")

    t = sub.add_parser("trust-policy", help="the tenant's ExternalId and IAM trust policy")
    t.add_argument("--tenant", required=True)

    o = sub.add_parser("onboarding", help="how a tenant grants our identity a keyless kind")
    o.add_argument("--tenant", required=True)
    o.add_argument("--kind", required=True, help="a wire kind name")

    cr = sub.add_parser(
        "credentials", help="register, list, show, revoke credentials"
    ).add_subparsers(dest="sub", required=True)
    r = cr.add_parser("register")
    r.add_argument("--tenant", required=True)
    r.add_argument("--kind", required=True, choices=KINDS)
    r.add_argument("--from-file", required=True, help="the credential JSON, or - for stdin")
    r.add_argument("--name")
    r.add_argument("--idempotency-key")
    cr.add_parser("list").add_argument("--tenant", required=True)
    for name in ("show", "revoke"):
        x = cr.add_parser(name)
        x.add_argument("--tenant", required=True)
        x.add_argument("--id", required=True)
        if name == "revoke":
            x.add_argument("--reason")

    mo = sub.add_parser("mounts", help="create, list, show, rebind, check mounts").add_subparsers(
        dest="sub", required=True
    )
    m = mo.add_parser("create")
    m.add_argument("--tenant", required=True)
    m.add_argument("--name", required=True)
    m.add_argument("--bucket", required=True)
    m.add_argument("--credential", required=True)
    for flag in ("--prefix", "--region", "--endpoint"):
        m.add_argument(flag)
    m.add_argument("--max-ttl", type=int)
    m.add_argument("--methods", help="comma-separated, e.g. GET,HEAD,PUT")
    m.add_argument(
        "--allow-credential-lifetime",
        action="store_true",
        help="accept URLs that live as long as the customer SAS they carry",
    )
    m.add_argument(
        "--no-stable-urls",
        action="store_true",
        help="sign every URL at the second of the call (no cache-stable windows)",
    )
    mo.add_parser("list").add_argument("--tenant", required=True)
    for name in ("show", "check", "rebind"):
        x = mo.add_parser(name)
        x.add_argument("--tenant", required=True)
        x.add_argument("--id", required=True)
        if name == "rebind":
            x.add_argument("--credential", required=True)
            x.add_argument("--expected-version", type=int, required=True)

    g = sub.add_parser("sign", help="a signed URL for one object")
    g.add_argument("--tenant", required=True)
    g.add_argument("--mount", required=True)
    g.add_argument("--method", default="GET", choices=("GET", "HEAD", "PUT"))
    g.add_argument("--ttl", type=int)
    g.add_argument("key")

    add_link_parser(sub)

    ls = sub.add_parser("ls", help="list objects under a mount")
    ls.add_argument("--tenant", required=True)
    ls.add_argument("--mount", required=True)
    for flag in ("--prefix", "--delimiter", "--page-token"):
        ls.add_argument(flag)
    ls.add_argument("--sign-ttl", type=int)

    au = sub.add_parser("audit", help="query, verify or export the audit log").add_subparsers(
        dest="sub", required=True
    )
    q = au.add_parser("query")
    q.add_argument("--tenant")
    q.add_argument("--action")
    q.add_argument("--outcome", choices=("ok", "denied", "error", "replayed"))
    q.add_argument("--limit", type=int)
    v = au.add_parser("verify", help="verify chains and signed checkpoints (exit 1 if not ok)")
    v.add_argument("--full", action="store_true", help="re-hash every row, not only new ones")
    v.add_argument("--file", help="verify an archive or export offline instead of the server")
    v.add_argument("--public-key", help="with --file: the pinned audit public key (PEM)")
    e = au.add_parser("export", help="records and their checkpoints as JSON lines, to stdout")
    e.add_argument("--since", help="ISO 8601 time, inclusive")
    e.add_argument("--until", help="ISO 8601 time, exclusive")
    au.add_parser("public-key", help="the audit signing public key (PEM), to pin")

    keys.add_parser(sub)

    h = sub.add_parser("health", help="ask the server's gRPC health service (no token)")
    h.add_argument("--service", help="e.g. bucketvault.v1.Signer (default: the server)")
    h.add_argument("--timeout", type=float, default=5.0)
    tk = sub.add_parser("token", help="mint bearer tokens into the policy file").add_subparsers(
        dest="sub", required=True
    )
    tc = tk.add_parser("create", help="print a new token once; store only its hash")
    tc.add_argument("--name", required=True)
    tc.add_argument("--role", action="append", required=True, choices=ROLES)
    tc.add_argument("--tenant", action="append", required=True, help="a tenant name, or *")
    tc.add_argument("--mount", action="append", help="grant only this mount (id or name)")
    tc.add_argument("--prefix", action="append", help="grant only keys under this prefix")
    tc.add_argument("--method", action="append", choices=("GET", "HEAD", "PUT"))
    tc.add_argument("--max-ttl", type=int, help="longest URL lifetime, seconds")
    tc.add_argument("--replace", action="store_true", help="replace a principal of this name")
    po = sub.add_parser("policy", help="explain the policy file").add_subparsers(
        dest="sub", required=True
    )
    pe = po.add_parser("explain", help="who may do what (offline)")
    pe.add_argument("--principal")
    pe.add_argument("--tenant")
    pe.add_argument("--mount", action="append", help="a mount's id or name (repeat for both)")
    # SUPPRESS: without it the subcommand's default would undo a global --json.
    pe.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    for x in (tc, pe):
        x.add_argument("--policy", help="the policy file (default: the server's)")
        x.add_argument("--data-dir")
    return p


# Commands that read or write the policy file and call no server.
OFFLINE: dict[tuple[str, str], Callable[[argparse.Namespace], int]] = {
    ("token", "create"): _token_create,
    ("policy", "explain"): _policy_explain,
    **keys.OFFLINE,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.cmd == "serve":
            return _serve(args)
        if args.cmd == "health":
            return _health(args)
        offline = OFFLINE.get((args.cmd, getattr(args, "sub", "")))
        if offline is not None:
            return offline(args)
        if args.cmd == "audit" and args.sub == "verify" and args.file:
            return _verify_file(args)
        return _run(args)
    except BucketVaultError as exc:
        print(f"bucketvault: {exc.code.name}: {exc.message} [{exc.reason}]", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
