"""Configuration: parsed once at start-up from an environment mapping; a bad value stops it."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bucketvault import configfile
from bucketvault.errors import InvalidArgument
from bucketvault.urlpolicy import GOOGLE_TOKEN_URI, UrlPolicy

MAX_URL_TTL_SECONDS = 7 * 24 * 3600
DEFAULT_MOUNT_MAX_TTL = 3600
DEFAULT_TTL = 900


def env_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A true/false setting; anything else stops the server."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise InvalidArgument(f"{name} must be true or false", reason="INVALID_CONFIG")


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    """An integer setting in [lo, hi]; anything else stops the server."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        # Not a number: the same message as out of range, which says what would do.
        value = lo - 1
    if not lo <= value <= hi:
        raise InvalidArgument(
            f"{name} must be an integer between {lo} and {hi}", reason="INVALID_CONFIG"
        )
    return value


def env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A timeout or budget in seconds, in (0, 300]; anything else stops the server."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 300:
        raise InvalidArgument(
            f"{name} must be a number of seconds in (0, 300]", reason="INVALID_CONFIG"
        )
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in env.get(name, "").split(",") if v.strip())


@dataclass(frozen=True)
class TlsConfig:
    """The listener's PEM files; a client CA makes client certificates required."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw) if raw else None


def _tls(env: Mapping[str, str]) -> TlsConfig | None:
    cert = _path(env, "BUCKETVAULT_TLS_CERT_FILE")
    key = _path(env, "BUCKETVAULT_TLS_KEY_FILE")
    client_ca = _path(env, "BUCKETVAULT_TLS_CLIENT_CA_FILE")
    if cert is None and key is None:
        if client_ca is not None:
            raise InvalidArgument(
                "BUCKETVAULT_TLS_CLIENT_CA_FILE needs BUCKETVAULT_TLS_CERT_FILE and "
                "BUCKETVAULT_TLS_KEY_FILE (client certificates are checked only over TLS)",
                reason="INVALID_CONFIG",
            )
        return None
    if cert is None or key is None:
        raise InvalidArgument(
            "set both BUCKETVAULT_TLS_CERT_FILE and BUCKETVAULT_TLS_KEY_FILE, or neither",
            reason="INVALID_CONFIG",
        )
    return TlsConfig(cert, key, client_ca)


def is_loopback(listen: str) -> bool:
    """Whether a listen address (host:port, [v6]:port) reaches only this machine."""
    host = listen.rsplit(":", 1)[0].strip("[]") if ":" in listen else ""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        # Another name, an empty host or a wildcard: it may be reachable from elsewhere.
        return False


def _check_plaintext(listen: str, tls: TlsConfig | None, allow_plaintext: bool) -> None:
    if tls is None and not allow_plaintext and not is_loopback(listen):
        raise InvalidArgument(
            f"BUCKETVAULT_LISTEN={listen} is not a loopback address and TLS is off: set "
            "BUCKETVAULT_TLS_CERT_FILE and BUCKETVAULT_TLS_KEY_FILE (PEM files), or "
            "BUCKETVAULT_ALLOW_PLAINTEXT=true if something else (a mesh sidecar) encrypts",
            reason="INVALID_CONFIG",
        )


def _metrics_listen(env: Mapping[str, str]) -> str:
    """BUCKETVAULT_METRICS_LISTEN: host:port for /metrics, or "" (off)."""
    raw = env.get("BUCKETVAULT_METRICS_LISTEN", "").strip()
    host, _, port = raw.rpartition(":")
    if raw and not (host and port.isdigit() and int(port) <= 65535):
        raise InvalidArgument(
            "BUCKETVAULT_METRICS_LISTEN must be host:port (e.g. 127.0.0.1:9464)",
            reason="INVALID_CONFIG",
        )
    return raw


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class OidcConfig:
    """Network mode's OIDC check: a bearer token or cookie signed by a key of the JWKS."""

    issuer: str
    audience: str
    jwks_file: Path | None = None
    jwks_url: str = ""
    cookie: str = ""


@dataclass(frozen=True)
class HttpConfig:
    """The stable-link HTTP listener (BUCKETVAULT_HTTP_*). With BUCKETVAULT_TLS_* set it
    serves HTTPS with the gRPC listener's certificate; without, a non-loopback listener
    needs an explicit flag (TLS is then the ingress's or the mesh's)."""

    listen: str
    # The links' scheme://host[:port] as browsers reach it; "" = http://<listen> (loopback).
    public_url: str = ""
    cors_origins: tuple[str, ...] = ()
    url_ttl_seconds: int = 600
    cache_margin_seconds: int = 60
    rate_per_second: int = 20
    rate_burst: int = 60
    revocation_refresh_seconds: int = 10
    threads: int = 8
    # Opens of one link (one mount in network mode) a second, across every client.
    link_rate_per_second: int = 50
    link_rate_burst: int = 200
    # Network mode: /n/<tenant>/<mount>/<key> without a token, from these networks only.
    network_mode: bool = False
    allow_cidrs: tuple[IpNetwork, ...] = ()
    oidc: OidcConfig | None = None


def _origin_or_base(value: str, name: str, insecure_ok: bool) -> str:
    parts = urlsplit(value)
    loopback = is_loopback(f"{parts.hostname or ''}:0") if parts.hostname else False
    plain_ok = insecure_ok or loopback
    if (
        parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not plain_ok)
        or not parts.netloc
        or parts.query
        or parts.fragment
        or parts.path not in ("", "/")
    ):
        raise InvalidArgument(
            f"{name} must be https://host[:port] (http only for loopback)",
            reason="INVALID_CONFIG",
        )
    return f"{parts.scheme}://{parts.netloc}"


def _http(env: Mapping[str, str], insecure_ok: bool, tls: TlsConfig | None) -> HttpConfig | None:
    listen = env.get("BUCKETVAULT_HTTP_LISTEN", "").strip()
    if not listen:
        return None
    plain_ok = tls is not None or env_bool(env, "BUCKETVAULT_HTTP_ALLOW_PLAINTEXT")
    if not is_loopback(listen) and not plain_ok:
        raise InvalidArgument(
            f"BUCKETVAULT_HTTP_LISTEN={listen} is not a loopback address and TLS is off: "
            "set BUCKETVAULT_TLS_CERT_FILE and BUCKETVAULT_TLS_KEY_FILE, or put it behind "
            "a TLS ingress or mesh and set BUCKETVAULT_HTTP_ALLOW_PLAINTEXT=true",
            reason="INVALID_CONFIG",
        )
    public = env.get("BUCKETVAULT_HTTP_PUBLIC_URL", "").strip()
    if public:
        public = _origin_or_base(public, "BUCKETVAULT_HTTP_PUBLIC_URL", insecure_ok)
    elif not is_loopback(listen):
        raise InvalidArgument(
            "set BUCKETVAULT_HTTP_PUBLIC_URL (the https:// address browsers reach links at)",
            reason="INVALID_CONFIG",
        )
    origins = tuple(
        _origin_or_base(o, "BUCKETVAULT_HTTP_CORS_ORIGINS", True)
        for o in _list(env, "BUCKETVAULT_HTTP_CORS_ORIGINS")
    )
    ttl = env_int(env, "BUCKETVAULT_HTTP_URL_TTL_SECONDS", 600, 60, MAX_URL_TTL_SECONDS)
    config = HttpConfig(
        listen=listen,
        public_url=public,
        cors_origins=origins,
        url_ttl_seconds=ttl,
        cache_margin_seconds=env_int(env, "BUCKETVAULT_HTTP_CACHE_MARGIN_SECONDS", 60, 0, ttl - 1),
        rate_per_second=env_int(env, "BUCKETVAULT_HTTP_RATE_PER_SECOND", 20, 1, 100000),
        rate_burst=env_int(env, "BUCKETVAULT_HTTP_RATE_BURST", 60, 1, 100000),
        revocation_refresh_seconds=env_int(
            env, "BUCKETVAULT_HTTP_REVOCATION_REFRESH_SECONDS", 10, 1, 3600
        ),
        threads=env_int(env, "BUCKETVAULT_HTTP_THREADS", 8, 1, 256),
        link_rate_per_second=env_int(env, "BUCKETVAULT_HTTP_LINK_RATE_PER_SECOND", 50, 1, 100000),
        link_rate_burst=env_int(env, "BUCKETVAULT_HTTP_LINK_RATE_BURST", 200, 1, 100000),
    )
    network_mode, allow_cidrs, oidc = _network(env, insecure_ok)
    return dataclasses.replace(
        config, network_mode=network_mode, allow_cidrs=allow_cidrs, oidc=oidc
    )


def _network(
    env: Mapping[str, str], insecure_ok: bool
) -> tuple[bool, tuple[IpNetwork, ...], OidcConfig | None]:
    """Network mode's settings; off unless BUCKETVAULT_HTTP_NETWORK_MODE, and then only
    with at least one client network (an open-to-all mode is a token-less bucket)."""
    on = env_bool(env, "BUCKETVAULT_HTTP_NETWORK_MODE")
    try:
        cidrs = tuple(
            ipaddress.ip_network(c, strict=False)
            for c in _list(env, "BUCKETVAULT_HTTP_ALLOW_CIDRS")
        )
    except ValueError:
        raise InvalidArgument(
            "BUCKETVAULT_HTTP_ALLOW_CIDRS must be comma-separated networks (10.0.0.0/8, fd00::/8)",
            reason="INVALID_CONFIG",
        ) from None
    if on and not cidrs:
        raise InvalidArgument(
            "BUCKETVAULT_HTTP_NETWORK_MODE needs BUCKETVAULT_HTTP_ALLOW_CIDRS",
            reason="INVALID_CONFIG",
        )
    jwks_file = _path(env, "BUCKETVAULT_HTTP_OIDC_JWKS_FILE")
    jwks_url = env.get("BUCKETVAULT_HTTP_OIDC_JWKS_URL", "").strip()
    issuer = env.get("BUCKETVAULT_HTTP_OIDC_ISSUER", "").strip()
    audience = env.get("BUCKETVAULT_HTTP_OIDC_AUDIENCE", "").strip()
    oidc = None
    if jwks_file or jwks_url:
        if bool(jwks_file) == bool(jwks_url) or not issuer or not audience:
            raise InvalidArgument(
                "OIDC needs one of BUCKETVAULT_HTTP_OIDC_JWKS_FILE or _JWKS_URL, and "
                "BUCKETVAULT_HTTP_OIDC_ISSUER and BUCKETVAULT_HTTP_OIDC_AUDIENCE",
                reason="INVALID_CONFIG",
            )
        if jwks_url and not (jwks_url.startswith("https://") or insecure_ok):
            raise InvalidArgument(
                "BUCKETVAULT_HTTP_OIDC_JWKS_URL must be https", reason="INVALID_CONFIG"
            )
        cookie = env.get("BUCKETVAULT_HTTP_OIDC_COOKIE", "").strip()
        oidc = OidcConfig(issuer, audience, jwks_file, jwks_url, cookie)
    elif issuer or audience:
        raise InvalidArgument(
            "BUCKETVAULT_HTTP_OIDC_ISSUER/_AUDIENCE need a JWKS (BUCKETVAULT_HTTP_OIDC_JWKS_FILE "
            "or _JWKS_URL)",
            reason="INVALID_CONFIG",
        )
    return on, cidrs, oidc


_MIB = 1024 * 1024


@dataclass(frozen=True)
class CallLimits:
    """Per-principal call limits, the defaults a policy entry's "limits" override
    (BUCKETVAULT_LIMIT_*). 0 means no limit of that kind; all are off by default."""

    # Calls a second per principal, refilling a bucket of `burst` calls.
    rps: float = 0.0
    burst: int = 0
    # Calls in flight at once per principal.
    concurrency: int = 0


def _limits(env: Mapping[str, str]) -> CallLimits:
    rps = env_int(env, "BUCKETVAULT_LIMIT_RPS", 0, 0, 1_000_000)
    # Default burst: one second's worth of calls.
    burst = env_int(env, "BUCKETVAULT_LIMIT_BURST", max(rps, 1), 1, 1_000_000)
    return CallLimits(
        float(rps), burst, env_int(env, "BUCKETVAULT_LIMIT_CONCURRENCY", 0, 0, 10_000)
    )


@dataclass(frozen=True)
class Config:
    listen: str
    data_dir: Path
    store_url: str
    kek_uri: str
    previous_kek_uris: tuple[str, ...]
    policy_file: Path
    url_policy: UrlPolicy
    default_ttl_seconds: int = DEFAULT_TTL
    default_mount_max_ttl_seconds: int = DEFAULT_MOUNT_MAX_TTL
    grpc_workers: int = 16
    # Processes of `serve` sharing the port (SO_REUSEPORT; workers.py); 1 = no supervisor.
    workers: int = 1
    audit_jsonl: Path | None = None
    audit_writer_id: str = ""
    tls: TlsConfig | None = None
    allow_plaintext: bool = False
    # Audit rows older than this many days are archived and pruned; 0 keeps them forever.
    audit_retention_days: int = 0
    audit_archive_dir: Path = Path(".bucketvault/audit-archive")
    # Observability and shutdown: /metrics listener ("" = off); seconds in-flight calls
    # get to finish after SIGTERM.
    metrics_listen: str = ""
    drain_seconds: int = 20
    # The stable-link HTTP listener; None when BUCKETVAULT_HTTP_LISTEN is unset.
    http: HttpConfig | None = None
    # Browser origins CheckMount probes CORS for (BUCKETVAULT_BROWSER_ORIGINS).
    browser_origins: tuple[str, ...] = ()
    # Per-principal rate and concurrency limits (grpc/limits.py); off by default.
    limits: CallLimits = CallLimits()
    # The largest gRPC message the server reads / writes: a bigger request is refused
    # RESOURCE_EXHAUSTED by the transport before any of our code (or its memory) sees it.
    # 4 MiB holds a 1000-key batch of 1 KiB keys; 16 MiB holds its signed URLs many times.
    grpc_max_receive_bytes: int = 4 * 1024 * 1024
    grpc_max_send_bytes: int = 16 * 1024 * 1024
    # The raw environment, for providers that read their own settings (AWS_ENDPOINT_URL ...).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: str) -> Config:
        """Build from BUCKETVAULT_* variables; keyword overrides win (CLI flags), and the
        TOML file BUCKETVAULT_CONFIG (or config=) names sits under both."""
        merged = {**env, **{f"BUCKETVAULT_{k.upper()}": v for k, v in overrides.items() if v}}
        layer = configfile.layer_for(merged)
        if layer is None:
            return cls._parse(merged)
        with layer.blamed(merged):
            return cls._parse({**layer.values, **{k: v for k, v in merged.items() if v}})

    @classmethod
    def _parse(cls, merged: Mapping[str, str]) -> Config:
        data_dir = Path(merged.get("BUCKETVAULT_DATA_DIR", ".bucketvault")).resolve()
        allow = frozenset({GOOGLE_TOKEN_URI, *_list(merged, "BUCKETVAULT_GCS_TOKEN_URI_ALLOWLIST")})
        audit_jsonl = merged.get("BUCKETVAULT_AUDIT_JSONL", "")
        listen = merged.get("BUCKETVAULT_LISTEN", "127.0.0.1:50051")
        tls = _tls(merged)
        allow_plaintext = env_bool(merged, "BUCKETVAULT_ALLOW_PLAINTEXT")
        _check_plaintext(listen, tls, allow_plaintext)
        return cls(
            listen=listen,
            data_dir=data_dir,
            store_url=merged.get(
                "BUCKETVAULT_STORE", f"sqlite:///{data_dir / 'bucketvault.sqlite'}"
            ),
            kek_uri=merged.get("BUCKETVAULT_KEK", f"file://{data_dir / 'kek.key'}"),
            previous_kek_uris=_list(merged, "BUCKETVAULT_KEK_PREVIOUS"),
            policy_file=Path(merged.get("BUCKETVAULT_POLICY", str(data_dir / "policy.json"))),
            url_policy=UrlPolicy(
                allow_insecure=env_bool(merged, "BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS"),
                token_uri_allowlist=allow,
            ),
            default_ttl_seconds=env_int(
                merged, "BUCKETVAULT_DEFAULT_TTL_SECONDS", DEFAULT_TTL, 1, MAX_URL_TTL_SECONDS
            ),
            default_mount_max_ttl_seconds=env_int(
                merged,
                "BUCKETVAULT_DEFAULT_MOUNT_MAX_TTL_SECONDS",
                DEFAULT_MOUNT_MAX_TTL,
                1,
                MAX_URL_TTL_SECONDS,
            ),
            grpc_workers=env_int(merged, "BUCKETVAULT_GRPC_WORKERS", 16, 1, 256),
            workers=env_int(merged, "BUCKETVAULT_WORKERS", 1, 1, 64),
            audit_jsonl=Path(audit_jsonl) if audit_jsonl else None,
            audit_writer_id=merged.get("BUCKETVAULT_AUDIT_WRITER_ID", ""),
            tls=tls,
            allow_plaintext=allow_plaintext,
            audit_retention_days=env_int(merged, "BUCKETVAULT_AUDIT_RETENTION_DAYS", 0, 0, 36500),
            audit_archive_dir=Path(
                merged.get("BUCKETVAULT_AUDIT_ARCHIVE_DIR", str(data_dir / "audit-archive"))
            ),
            metrics_listen=_metrics_listen(merged),
            drain_seconds=env_int(merged, "BUCKETVAULT_DRAIN_SECONDS", 20, 0, 3600),
            http=_http(merged, env_bool(merged, "BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS"), tls),
            browser_origins=tuple(
                _origin_or_base(o, "BUCKETVAULT_BROWSER_ORIGINS", True)
                for o in _list(merged, "BUCKETVAULT_BROWSER_ORIGINS")
            ),
            limits=_limits(merged),
            grpc_max_receive_bytes=env_int(
                merged, "BUCKETVAULT_GRPC_MAX_RECEIVE_BYTES", 4 * _MIB, 64 * 1024, 256 * _MIB
            ),
            grpc_max_send_bytes=env_int(
                merged, "BUCKETVAULT_GRPC_MAX_SEND_BYTES", 16 * _MIB, 64 * 1024, 256 * _MIB
            ),
            env=dict(merged),
        )


__all__ = [
    "DEFAULT_MOUNT_MAX_TTL",
    "CallLimits",
    "DEFAULT_TTL",
    "MAX_URL_TTL_SECONDS",
    "Config",
    "HttpConfig",
    "OidcConfig",
    "TlsConfig",
    "env_bool",
    "env_int",
    "is_loopback",
]
