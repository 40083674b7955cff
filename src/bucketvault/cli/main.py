"""The `bucketvault` command: `serve`, operator commands that call a running server, and
`token create` / `policy explain`, which work on the policy file offline.

Human-readable tables by default, `--json` (one JSON document) or `--output ndjson` (one
JSON object per line) for scripts. Global flags go before or after the subcommand; mounts
and credentials are named by id or by name. Exit codes: 0 ok, 1 service error, 2 usage,
3 not found, 4 denied, 5 unavailable. Credentials are sealed locally by the SDK before
they leave this process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bucketvault.audit.archive import ArchiveError, read_archive, verify_archive
from bucketvault.audit.signing import TrustedKeys, load_public_pem
from bucketvault.auth.authn import load_policy_file
from bucketvault.auth.explain import explain
from bucketvault.auth.tokens import create_token
from bucketvault.cli import config as config_cli
from bucketvault.cli import keys
from bucketvault.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliError,
    Progress,
    duration,
    exit_code_of,
    styled,
    to_json,
)
from bucketvault.cli.links import add_link_parser, run_link
from bucketvault.client import BucketVaultClient, tls_credentials
from bucketvault.config import Config
from bucketvault.errors import BucketVaultError
from bucketvault.models import Role
from bucketvault.observe.logs import configure_logging
from bucketvault.protoenums import short_name
from bucketvault.service import ADMIN_TOKEN_FILE, build_service
from bucketvault.v1 import common_pb2, signer_pb2, vault_pb2
from bucketvault.workers import (
    HEALTH_LINE,
    die_with_parent,
    serve_worker_health,
    supervise,
    worker_command,
)

DEFAULT_ADDRESS = "127.0.0.1:50051"
ROLES = tuple(r.value for r in Role)
# The wire enum is the one list of kind names.
KINDS = tuple(
    short_name(common_pb2.CredentialKind, n)
    for n in common_pb2.CredentialKind.values()
    if n != common_pb2.CREDENTIAL_KIND_UNSPECIFIED
)


def _serve(args: argparse.Namespace) -> int:
    overrides = {
        "listen": args.listen or "",
        "data_dir": args.data_dir or "",
        "config": args.config or "",
        # An explicit --workers 0 is refused by Config, not taken for "unset".
        "workers": "" if args.workers is None else str(args.workers),
    }
    # Validated as `config check` does; an error names the TOML file's key when it set it.
    with config_cli.blamed(os.environ, overrides):
        config = config_cli.load(os.environ, overrides)
        # JSON lines unless BUCKETVAULT_LOG_FORMAT=text (observe/logs.py); config.env holds
        # the TOML file's settings too.
        configure_logging(config.env)
    worker = args.worker_index is not None
    if config.workers > 1 and not worker:
        # The supervisor (workers.py): it prepares the first-run state, then runs
        # this same command once per worker, with --worker-index.
        return supervise(config, worker_command())
    if worker:
        die_with_parent()
    try:
        service = build_service(config, reuse_port=worker)
    except (OSError, RuntimeError) as exc:
        # grpc says "Failed to bind to address ..." (RuntimeError) for a busy port or an
        # address this host does not have: one line, exit 5.
        if isinstance(exc, RuntimeError) and "bind" not in str(exc):
            raise
        listen = config.listen
        raise CliError(
            f"cannot listen on {listen}: the port is in use or the address is not this host's",
            EXIT_UNAVAILABLE,
        ) from None
    # Handlers first, then the "listening" line: whoever waits for that line (a supervisor,
    # a test) may signal at once, and SIGHUP's default action would end the process.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # The conventional "re-read your configuration": the policy file, here.
    signal.signal(signal.SIGHUP, lambda *_: service.reload_policy())
    health_server = None
    if worker:
        health_server, health_address = serve_worker_health(
            service.health or health.HealthServicer()
        )
        print(f"{HEALTH_LINE}{health_address}", flush=True)
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
    if health_server is not None:
        health_server.stop(None)
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
        raise CliError("policy explain needs --principal or --tenant", EXIT_USAGE)
    if args.mount and not args.tenant:
        raise CliError("--mount needs --tenant", EXIT_USAGE)
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
        raise CliError("--tls-cert and --tls-key go together", EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot read TLS file {exc.filename}", EXIT_USAGE) from None


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
        raise CliError(
            f"cannot read token file {path} (or set BUCKETVAULT_TOKEN)", EXIT_USAGE
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
    print(json.dumps({"status": status}) if args.output in ("json", "ndjson") else status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


def _dict(message: Any) -> dict[str, Any]:
    return to_json(message)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    lines = [styled(header, "1", sys.stdout)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _emit(args: argparse.Namespace, items: Iterable[Any], columns: Sequence[str]) -> None:
    if args.output == "ndjson":
        # Streams: one object per line as the answer arrives.
        for m in items:
            print(json.dumps(_dict(m)))
        return
    rows = [_dict(m) for m in items]
    if args.output == "json":
        # A list command prints an array (even of one); a single answer an object.
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


def _methods(text: str | None) -> list[str]:
    return [x for x in (text or "").split(",") if x]


def _rebind_mount(args: argparse.Namespace, c: BucketVaultClient) -> Iterable[Any]:
    # --bucket (with --prefix, --region, --endpoint) moves the mount: the location flags
    # given replace the whole location, as the service does.
    return [
        c.rebind_mount(
            args.tenant,
            args.id,
            args.credential,
            args.expected_version,
            bucket=args.bucket or "",
            prefix=args.prefix or "",
            region=args.region or "",
            endpoint=args.endpoint or "",
        )
    ]


def _update_mount(args: argparse.Namespace, c: BucketVaultClient) -> Iterable[Any]:
    # The service replaces the whole policy; the CLI changes only the flags given, on the
    # policy read now (the compare-and-swap on --expected-version catches a change since).
    asked = (
        args.max_ttl,
        args.methods,
        args.allow_credential_lifetime,
        args.stable_urls,
    )
    policy = None
    if any(x is not None for x in asked):
        policy = vault_pb2.MountPolicy()
        policy.CopyFrom(c.get_mount(args.tenant, args.id).policy)
        if args.max_ttl is not None:
            policy.max_ttl_seconds = args.max_ttl
        if args.methods is not None:
            policy.ClearField("allowed_methods")
            policy.allowed_methods.extend(
                common_pb2.Method.Value(m) for m in _methods(args.methods)
            )
        if args.allow_credential_lifetime is not None:
            policy.allow_credential_lifetime = args.allow_credential_lifetime
        if args.stable_urls is not None:
            policy.disable_stable_urls = not args.stable_urls
    return [
        c.update_mount(
            args.tenant, args.id, args.expected_version, name=args.name or "", policy=policy
        )
    ]


def _check_mount(args: argparse.Namespace, c: BucketVaultClient) -> Iterable[Any]:
    if args.id:
        if args.credential or args.bucket:
            raise CliError(
                "mounts check takes --id or --credential and --bucket, not both", EXIT_USAGE
            )
        return [c.check_mount(args.tenant, args.id, origin=args.origin or "")]
    if not (args.credential and args.bucket):
        raise CliError("mounts check needs --id, or --credential and --bucket", EXIT_USAGE)
    return [
        c.check_new_mount(
            args.tenant,
            credential_id=args.credential,
            bucket=args.bucket,
            prefix=args.prefix or "",
            region=args.region or "",
            endpoint=args.endpoint or "",
            allowed_methods=_methods(args.methods),
            origin=args.origin or "",
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
    ("mounts", "rebind"): (_rebind_mount, MOUNT_COLS, False),
    ("mounts", "update"): (_update_mount, MOUNT_COLS, False),
    ("mounts", "delete"): (
        lambda a, c: [c.delete_mount(a.tenant, a.id, a.expected_version)],
        MOUNT_COLS,
        False,
    ),
    ("mounts", "check"): (_check_mount, ("state", "reason", "detail"), False),
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
        to_json(result, defaults=True),
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


def _one(kind: str, value: str, tenant: str, ids: Sequence[str]) -> str:
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise CliError(f"no {kind} named {value!r} in tenant {tenant!r}", EXIT_NOT_FOUND)
    raise CliError(
        f"{len(ids)} {kind}s named {value!r} in tenant {tenant!r} ({', '.join(ids)}): give the id",
        EXIT_NOT_FOUND,
    )


def mount_id(c: BucketVaultClient, tenant: str, value: str) -> str:
    """value if it looks like a mount id (mnt_...), else the id of the mount of that name."""
    if value.startswith("mnt_"):
        return value
    return _one(
        "mount", value, tenant, [m.mount_id for m in c.list_mounts(tenant) if m.name == value]
    )


def credential_id(c: BucketVaultClient, tenant: str, value: str) -> str:
    """value if it looks like a credential id (cred_...), else the id of the credential of
    that display name; among several, the one not revoked, if only one is."""
    if value.startswith("cred_"):
        return value
    found = [x for x in c.list_credentials(tenant) if x.display_name == value]
    active = [x for x in found if x.state != vault_pb2.CREDENTIAL_STATE_REVOKED]
    if len(found) > 1 and len(active) == 1:
        found = active
    return _one("credential", value, tenant, [x.credential_id for x in found])


def _resolve_names(args: argparse.Namespace, c: BucketVaultClient) -> None:
    """Names to ids wherever a mount or a credential is named (ListMounts, ListCredentials)."""
    cmd, sub, tenant = args.cmd, getattr(args, "sub", ""), getattr(args, "tenant", None)
    if not tenant:
        return
    if cmd in ("sign", "ls", "link") and args.mount is not None:
        args.mount = mount_id(c, tenant, args.mount)
    elif cmd == "mounts" and sub in ("show", "check", "rebind", "update", "delete"):
        if args.id:
            args.id = mount_id(c, tenant, args.id)
    elif cmd == "credentials" and sub in ("show", "revoke"):
        args.id = credential_id(c, tenant, args.id)
    if cmd == "mounts" and sub in ("create", "rebind", "check") and args.credential:
        args.credential = credential_id(c, tenant, args.credential)


def _run(args: argparse.Namespace) -> int:
    args.many = False
    with _client(args) as c:
        _resolve_names(args, c)
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
            return _sign(args, c)
        elif cmd == "ls":
            _ls(args, c)
        elif cmd == "link":
            return run_link(args, c)
    return 0


BATCH = 1000  # keys per SignURLs call: the service's limit (app/signing.py MAX_BATCH_KEYS)


def _batches(source: str) -> Iterator[list[str]]:
    """The non-empty lines of a file (or - for stdin), BATCH at a time, read lazily."""
    fh = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    try:
        batch: list[str] = []
        for line in fh:
            key = line.rstrip("\r\n")
            if key.strip():
                batch.append(key)
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        if fh is not sys.stdin:
            fh.close()


def _sign(args: argparse.Namespace, c: BucketVaultClient) -> int:
    if (args.batch is None) == (args.key is None):
        raise CliError("sign needs one key, or --batch FILE (- for stdin)", EXIT_USAGE)
    # Without --mount every key is an object URI, resolved by the service (longest prefix
    # of the tenant's mounts on that bucket; NO_MOUNT_FOR_URI, AMBIGUOUS_MOUNT).
    by_uri = args.mount is None
    if by_uri and args.key is not None and "://" not in args.key:
        raise CliError("sign needs --mount, or an object URI (s3://bucket/key)", EXIT_USAGE)
    if args.batch is None:
        signed = [
            c.sign_url(
                args.tenant,
                args.mount or "",
                "" if by_uri else args.key,
                method=args.method,
                ttl_seconds=args.ttl or 0,
                uri=args.key if by_uri else "",
            )
        ]
    else:
        signed = []
    collected: list[dict[str, Any]] = []
    progress = Progress("signed", enabled=args.batch is not None)

    def emit(s: signer_pb2.SignedURL) -> None:
        if args.output == "json":
            collected.append(_dict(s))
        elif args.output == "ndjson":
            print(json.dumps(_dict(s)))
        elif args.output == "url" or args.batch is None:
            print(s.url)
        else:
            print(f"{s.key}\t{s.url}")

    for s in signed:
        emit(s)
        if args.output == "table":
            for k, v in s.required_headers.items():
                print(f"# header {k}: {v}", file=sys.stderr)
    if args.batch is not None:
        for keys_ in _batches(args.batch):
            if by_uri:
                batch = c.sign_urls(
                    args.tenant, "", (), method=args.method, ttl_seconds=args.ttl or 0, uris=keys_
                )
            else:
                batch = c.sign_urls(
                    args.tenant, args.mount, keys_, method=args.method, ttl_seconds=args.ttl or 0
                )
            for s in batch:
                emit(s)
            progress.add(len(keys_))
        progress.done()
    if args.output == "json":
        one = args.batch is None
        print(json.dumps(collected[0] if one else collected, indent=2))
    return 0


def _ls(args: argparse.Namespace, c: BucketVaultClient) -> None:
    """One page (the service's, up to 1000 keys) unless --all; the next page's token goes to
    stderr in a table, into the document with --json, as a last line with ndjson."""
    progress = Progress("listed", enabled=args.all and args.output != "json")
    entries: list[dict[str, Any]] = []
    prefixes: list[str] = []
    token = ""
    pages = c.list_prefix(
        args.tenant,
        args.mount,
        prefix=args.prefix or "",
        delimiter=args.delimiter or "",
        page_size=args.page_size or 0,
        page_token=args.page_token or "",
        sign_ttl_seconds=args.sign_ttl or 0,
    )
    try:
        for page in pages:
            for p in page.common_prefixes:
                if args.output == "json":
                    prefixes.append(p)
                elif args.output == "ndjson":
                    print(json.dumps({"prefix": p}))
                elif args.output == "table":
                    print(f"{'PRE':>12}  {p}")
            for e in page.entries:
                if args.output == "json":
                    entries.append(_dict(e))
                elif args.output == "ndjson":
                    print(json.dumps(_dict(e)))
                elif args.output == "url":
                    if e.url:
                        print(e.url)
                else:
                    # A listed key the service refuses to sign says why instead of a URL.
                    note = (
                        f"  {e.url}"
                        if e.url
                        else (f"  (no URL: {e.url_error})" if e.url_error else "")
                    )
                    print(f"{e.size:>12}  {e.key}{note}")
            progress.add(len(page.entries))
            token = page.next_page_token
            if not args.all:
                break
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # cancels the stream when we stop after the first page
    progress.done()
    if args.output == "json":
        document = {"entries": entries, "common_prefixes": prefixes, "next_page_token": token}
        print(json.dumps(document, indent=2))
    elif args.output == "ndjson":
        if token:
            print(json.dumps({"next_page_token": token}))
    elif token:
        print(
            f"bucketvault: more: resume with --page-token {token} (or --all)",
            file=sys.stderr,
        )


def _version() -> str:
    # The installed distribution's version (pyproject.toml), not a copy kept in the code.
    try:
        return version("bucketvault")
    except PackageNotFoundError:
        return "unknown (not installed)"


OUTPUTS = ("table", "json", "ndjson", "url")


def _add_globals(p: argparse.ArgumentParser, *, top: bool) -> None:
    """The flags every command takes. On the top parser with their defaults; on each
    subcommand again with SUPPRESS, so that given after the subcommand they win, and
    absent there they leave the top parser's value alone."""
    env = os.environ.get
    group = p.add_argument_group("global options") if not top else p
    have = p._option_string_actions

    def add(flag: str, default: Any, **kw: Any) -> None:
        if flag not in have:
            group.add_argument(flag, default=default if top else argparse.SUPPRESS, **kw)

    add(
        "--address",
        env("BUCKETVAULT_ADDRESS", DEFAULT_ADDRESS),
        help="the server, host:port (BUCKETVAULT_ADDRESS; default 127.0.0.1:50051)",
    )
    add(
        "--token-file",
        None,
        help="file holding the bearer token (BUCKETVAULT_TOKEN_FILE; default "
        ".bucketvault/admin.token; BUCKETVAULT_TOKEN wins over both)",
    )
    add("--json", False, action="store_true", help="one JSON document (= --output json)")
    add(
        "--output",
        None,
        choices=OUTPUTS,
        help="table (default), json (one document), ndjson (one object per line, streamed), "
        "url (sign, ls --sign-ttl: just the URLs)",
    )
    add(
        "--tls-ca",
        env("BUCKETVAULT_TLS_CA", ""),
        help="CA bundle (PEM) for the server's certificate; any --tls-* flag turns TLS on",
    )
    add("--tls-cert", env("BUCKETVAULT_TLS_CERT", ""), help="client certificate (mTLS)")
    add("--tls-key", env("BUCKETVAULT_TLS_KEY", ""), help="client certificate's key")


# Every command's one-line description and example (its --help shows both).
HELP: dict[str, tuple[str, str]] = {
    "serve": (
        "Run the gRPC server; state lives in the data directory.",
        "bucketvault serve --listen 127.0.0.1:50051 --data-dir .bucketvault",
    ),
    "trust-policy": (
        "The tenant's ExternalId and the IAM trust policy its AWS role needs.",
        "bucketvault trust-policy --tenant acme --json",
    ),
    "onboarding": (
        "How a tenant grants the service's own identity access, for a keyless kind.",
        "bucketvault onboarding --tenant acme --kind GCS_IMPERSONATION",
    ),
    "credentials": (
        "Register, list, show and revoke a tenant's credentials.",
        "bucketvault credentials list --tenant acme",
    ),
    "credentials register": (
        "Seal a credential locally (HPKE) and register it; the plaintext never leaves.",
        'echo \'{"access_id": "GOOG1...", "secret": "..."}\' | \\\n'
        "  bucketvault credentials register --tenant acme --kind GCS_HMAC --from-file - "
        "--name hmac-prod",
    ),
    "credentials list": (
        "Every credential of a tenant.",
        "bucketvault credentials list --tenant acme --output ndjson",
    ),
    "credentials show": (
        "One credential, by id (cred_...) or display name.",
        "bucketvault credentials show --tenant acme --id hmac-prod",
    ),
    "credentials revoke": (
        "Revoke a credential, by id or display name; its mounts stop signing.",
        "bucketvault credentials revoke --tenant acme --id hmac-prod --reason rotated",
    ),
    "mounts": (
        "Create, list, show, update, delete, rebind (or move) and check mounts.",
        "bucketvault mounts list --tenant acme",
    ),
    "mounts create": (
        "A mount: a bucket (and prefix) signed for with a credential (id or name).",
        "bucketvault mounts create --tenant acme --name photos --bucket acme-photos \\\n"
        "  --prefix images/ --credential hmac-prod --max-ttl 6h --methods GET,HEAD",
    ),
    "mounts list": ("Every mount of a tenant.", "bucketvault mounts list --tenant acme --json"),
    "mounts show": (
        "One mount, by id (mnt_...) or name.",
        "bucketvault mounts show --tenant acme --id photos",
    ),
    "mounts check": (
        "Whether a mount's credential reaches its bucket; or, before creating or moving one, "
        "a credential and a bucket's.",
        "bucketvault mounts check --tenant acme --id photos\n"
        "  bucketvault mounts check --tenant acme --credential gcs-key --bucket acme-photos "
        "--prefix img/",
    ),
    "mounts update": (
        "Rename a mount or change the policy flags given (compare-and-swap on its version).",
        "bucketvault mounts update --tenant acme --id photos --expected-version 3 "
        "--max-ttl 15m --methods GET,HEAD",
    ),
    "mounts delete": (
        "Delete a mount (compare-and-swap on its version); its audit records stay.",
        "bucketvault mounts delete --tenant acme --id photos --expected-version 3",
    ),
    "mounts rebind": (
        "Point a mount at another credential; with --bucket, move it (any cloud). "
        "Compare-and-swap on the mount's version.",
        "bucketvault mounts rebind --tenant acme --id photos --credential hmac-new "
        "--expected-version 3\n"
        "  bucketvault mounts rebind --tenant acme --id photos --credential azure-key "
        "--expected-version 4 --bucket photos --prefix img/",
    ),
    "sign": (
        "A signed URL for one key, or for every key of a file with --batch (1000 per call).",
        "bucketvault sign --tenant acme --mount photos --ttl 15m images/cat.jpg\n"
        "  bucketvault sign --tenant acme s3://acme-photos/images/cat.jpg\n"
        "  bucketvault sign --tenant acme --mount photos --batch - --output url < keys.txt",
    ),
    "link": (
        "Create and revoke stable links.",
        "bucketvault link create --tenant acme --mount photos images/cat.jpg",
    ),
    "link create": (
        "Stable links to keys, or with --prefix to every key under a prefix.",
        "bucketvault link create --tenant acme --mount photos images/cat.jpg images/dog.jpg",
    ),
    "link revoke": (
        "Revoke a stable link: it answers 404 from then on.",
        "bucketvault link revoke --tenant acme --mount photos lnk_...",
    ),
    "ls": (
        "List objects under a mount, a page at a time (--all: every page).",
        "bucketvault ls --tenant acme --mount photos --prefix images/ --delimiter / --all",
    ),
    "audit": (
        "Query, verify or export the audit log.",
        "bucketvault audit query --tenant acme --outcome denied",
    ),
    "audit query": (
        "Audit records matching the filters.",
        "bucketvault audit query --tenant acme --action signer.sign --limit 20",
    ),
    "audit verify": (
        "Verify the hash chains and signed checkpoints; exit 1 unless ok.",
        "bucketvault audit verify --full",
    ),
    "audit export": (
        "Records and their checkpoints as JSON lines, to stdout.",
        "bucketvault audit export --since 2026-01-01T00:00:00+00:00 > audit.jsonl",
    ),
    "audit public-key": (
        "The audit signing public key (PEM), to pin for offline checks.",
        "bucketvault audit public-key > audit-key.pem",
    ),
    "keys": (
        "KEK and registration key rotation, offline, on the store.",
        "bucketvault keys status",
    ),
    "keys status": (
        "Records per KEK, and when an old KEK may be removed (offline).",
        "bucketvault keys status --data-dir .bucketvault",
    ),
    "keys rotate-kek": (
        "Re-wrap every data key under a new KEK (offline, on the store).",
        "bucketvault keys rotate-kek --to file:///etc/bucketvault/kek-2.key --batch 500",
    ),
    "keys rotate-registration-key": (
        "A new HPKE registration key per suite; the previous ones overlap.",
        "bucketvault keys rotate-registration-key --overlap-days 7",
    ),
    "config": (
        "The server's effective configuration: environment, TOML file, defaults (offline).",
        "bucketvault config check --config /etc/bucketvault/bucketvault.toml",
    ),
    "config check": (
        "Each setting, its value (secrets hidden) and its source; exit 2 when one is bad.",
        "bucketvault config check --config bucketvault.toml --json",
    ),
    "keys rotate-link-key": (
        "A new link MAC key; links signed with the previous one keep opening until retired.",
        "bucketvault keys rotate-link-key --data-dir /var/lib/bucketvault",
    ),
    "keys retire-link-key": (
        "Retire an old link key: every link it signed answers 404 after a restart.",
        "bucketvault keys retire-link-key lk_0123456789abcdef",
    ),
    "health": (
        "Ask the server's gRPC health service (no token needed); exit 0 only if SERVING.",
        "bucketvault health --address vault.internal:50051 --tls-ca ca.pem",
    ),
    "token": (
        "Mint bearer tokens into the policy file (offline).",
        "bucketvault token create --name web --role signer --tenant acme",
    ),
    "token create": (
        "Print a new bearer token once; the policy file keeps only its hash.",
        "bucketvault token create --name web --role signer --tenant acme --mount photos "
        "--max-ttl 1h",
    ),
    "policy": (
        "Explain the policy file (offline).",
        "bucketvault policy explain --tenant acme",
    ),
    "policy explain": (
        "Who may do what, from the policy file, as the server decides it (offline).",
        "bucketvault policy explain --tenant acme --mount photos",
    ),
}


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands(p: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, parser) of every command and command group, e.g. ("mounts create", ...)."""
    for name, sub in _subparsers(p).items():
        full = f"{path} {name}".strip()
        yield full, sub
        yield from commands(sub, full)


def _finish(p: argparse.ArgumentParser) -> None:
    for path, sub in commands(p):
        description, example = HELP.get(path, ("", ""))
        sub.description = description or sub.description
        if example:
            sub.epilog = f"example:\n  {example}"
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
        if not _subparsers(sub):
            _add_globals(sub, top=False)
        # Durations for the lifetimes defined elsewhere (cli/links.py) as well.
        for action in sub._actions:
            if action.dest == "expires_in" and action.type is int:
                action.type = duration
                action.help = "link lifetime: seconds or 15m, 6h, 30d; 0 = never (default)"


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(
        prog="bucketvault",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  bucketvault credentials list --tenant acme --json\n"
        "every command's --help has its own example.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_globals(p, top=True)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("serve", help="run the gRPC server")
    s.add_argument("--listen")
    s.add_argument("--data-dir")
    s.add_argument("--config", help="a TOML config file, under the environment (README)")
    s.add_argument(
        "--workers",
        type=int,
        help="processes sharing the port (SO_REUSEPORT; BUCKETVAULT_WORKERS, default 1)",
    )
    # Set by the supervisor on the workers it starts; not for operators.
    s.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)

    t = sub.add_parser("trust-policy", help="the tenant's ExternalId and IAM trust policy")
    t.add_argument("--tenant", required=True)

    o = sub.add_parser("onboarding", help="how a tenant grants our identity a keyless kind")
    o.add_argument("--tenant", required=True)
    o.add_argument("--kind", required=True, help="a wire kind name")

    cr = sub.add_parser(
        "credentials", help="register, list, show, revoke credentials"
    ).add_subparsers(dest="sub", required=True)
    r = cr.add_parser("register", help="seal locally and register a credential")
    r.add_argument("--tenant", required=True)
    r.add_argument("--kind", required=True, choices=KINDS)
    r.add_argument("--from-file", required=True, help="the credential JSON, or - for stdin")
    r.add_argument("--name")
    r.add_argument("--idempotency-key")
    cr.add_parser("list", help="every credential of a tenant").add_argument(
        "--tenant", required=True
    )
    for name in ("show", "revoke"):
        x = cr.add_parser(name, help=f"{name} a credential (id or display name)")
        x.add_argument("--tenant", required=True)
        x.add_argument("--id", required=True, help="a credential id (cred_...) or display name")
        if name == "revoke":
            x.add_argument("--reason")

    mo = sub.add_parser(
        "mounts", help="create, list, show, update, delete, rebind, move, check mounts"
    ).add_subparsers(dest="sub", required=True)
    m = mo.add_parser("create", help="a mount on a bucket, signed with a credential")
    m.add_argument("--tenant", required=True)
    m.add_argument("--name", required=True)
    m.add_argument("--bucket", required=True)
    m.add_argument("--credential", required=True, help="a credential id or display name")
    for flag in ("--prefix", "--region", "--endpoint"):
        m.add_argument(flag)
    m.add_argument("--max-ttl", type=duration, help="longest URL lifetime: 3600, 90s, 15m, 6h, 1d")
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
    mo.add_parser("list", help="every mount of a tenant").add_argument("--tenant", required=True)
    for name in ("show", "check", "rebind", "update", "delete"):
        x = mo.add_parser(name, help=f"{name} a mount (id or name)")
        x.add_argument("--tenant", required=True)
        # check: or a mount not created yet (--credential and --bucket).
        x.add_argument("--id", required=name != "check", help="a mount id (mnt_...) or name")
        if name in ("rebind", "update", "delete"):
            x.add_argument("--expected-version", type=int, required=True)
        if name in ("rebind", "check"):
            x.add_argument(
                "--credential", required=name == "rebind", help="a credential id or display name"
            )
            x.add_argument(
                "--bucket", help="rebind: move the mount there (any cloud); check: a new mount's"
            )
            for flag in ("--prefix", "--region", "--endpoint"):
                x.add_argument(flag)
        if name == "check":
            x.add_argument("--methods", help="a new mount's methods, e.g. GET,HEAD,PUT")
            x.add_argument("--origin", help="a browser origin to probe CORS for")
        if name == "update":
            x.add_argument("--name", help="the mount's new name")
            x.add_argument("--max-ttl", type=duration, help="longest URL lifetime: 3600, 15m, 6h")
            x.add_argument("--methods", help="comma-separated, e.g. GET,HEAD,PUT")
            x.add_argument(
                "--allow-credential-lifetime",
                action=argparse.BooleanOptionalAction,
                help="accept URLs that live as long as the customer SAS they carry",
            )
            x.add_argument(
                "--stable-urls",
                action=argparse.BooleanOptionalAction,
                help="cache-stable URL windows (on by default at creation)",
            )

    g = sub.add_parser("sign", help="a signed URL for one object (or --batch)")
    g.add_argument("--tenant", required=True)
    g.add_argument(
        "--mount",
        help="a mount id (mnt_...) or name; without it, keys are object URIs "
        "(s3://, gs://, az://, https) resolved to the tenant's mount",
    )
    g.add_argument("--method", default="GET", choices=("GET", "HEAD", "PUT"))
    g.add_argument("--ttl", type=duration, help="URL lifetime: 900, 90s, 15m, 6h, 1d")
    g.add_argument("--batch", metavar="FILE", help="sign every key of FILE (one a line; - stdin)")
    g.add_argument("key", nargs="?")

    add_link_parser(sub)

    ls = sub.add_parser("ls", help="list objects under a mount")
    ls.add_argument("--tenant", required=True)
    ls.add_argument("--mount", required=True, help="a mount id (mnt_...) or name")
    for flag in ("--prefix", "--delimiter"):
        ls.add_argument(flag)
    ls.add_argument("--page-token", help="resume from a listing's next_page_token")
    ls.add_argument("--page-size", type=int, help="keys per page, at most 1000 (default 1000)")
    ls.add_argument("--all", action="store_true", help="follow every page, not only the first")
    ls.add_argument("--sign-ttl", type=duration, help="sign a GET URL per key, valid this long")

    au = sub.add_parser("audit", help="query, verify or export the audit log").add_subparsers(
        dest="sub", required=True
    )
    q = au.add_parser("query", help="audit records matching the filters")
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
    config_cli.add_parser(sub)

    h = sub.add_parser("health", help="ask the server's gRPC health service (no token)")
    h.add_argument("--service", help="e.g. bucketvault.v1.SignerService (default: the server)")
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
    tc.add_argument("--max-ttl", type=duration, help="longest URL lifetime: 3600, 15m, 6h, 1d")
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
    _finish(p)
    return p


# Commands that read or write the policy file and call no server.
OFFLINE: dict[tuple[str, str], Callable[[argparse.Namespace], int]] = {
    ("token", "create"): _token_create,
    ("policy", "explain"): _policy_explain,
    **keys.OFFLINE,
    **config_cli.OFFLINE,
}


def _say(message: str) -> None:
    """One line on stderr: "bucketvault: <message>" (the prefix red on a terminal)."""
    print(f"{styled('bucketvault:', '31', sys.stderr)} {message}", file=sys.stderr, flush=True)


def _dispatch(args: argparse.Namespace) -> int:
    if args.json and args.output not in (None, "json"):
        raise CliError(f"--json and --output {args.output} disagree", EXIT_USAGE)
    args.output = "json" if args.json else (args.output or "table")
    # Commands that know only --json print their one document for ndjson as well.
    args.json = args.output in ("json", "ndjson")
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


def _quiet_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null, so that the interpreter's last
    flush at exit finds nowhere to fail (no "Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (README, "The CLI"): 0 ok, 1 service error, 2 usage,
    3 not found, 4 denied, 5 unavailable. Errors are one line on stderr, no traceback."""
    try:
        try:
            code = _dispatch(parser().parse_args(argv))
            sys.stdout.flush()
            return code
        except BrokenPipeError:
            raise
        except CliError as exc:
            _say(exc.message)
            return exc.exit_code
        except BucketVaultError as exc:
            _say(f"{exc.code.name}: {exc.message} [{exc.reason}]")
            return exit_code_of(exc)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            _say(f"{exc.strerror or exc}{where}")
            return 1
        except KeyboardInterrupt:
            return 130
        except Exception as exc:
            if os.environ.get("BUCKETVAULT_DEBUG"):
                raise
            _say(f"unexpected {type(exc).__name__}: {exc} (BUCKETVAULT_DEBUG=1 shows where)")
            return 1
    except BrokenPipeError:
        # `bucketvault ls ... | head -1`: the reader had enough; that is not a failure.
        _quiet_stdout()
        return 0


if __name__ == "__main__":
    sys.exit(main())
