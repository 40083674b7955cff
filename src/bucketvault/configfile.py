"""The optional TOML config file (BUCKETVAULT_CONFIG, `bucketvault serve --config FILE`).

The file is one more layer under the environment: each of its keys stands for one
BUCKETVAULT_* variable (SETTINGS, the one table), its values are spelled the way the
environment would spell them, and the merged mapping goes through the same parser as the
environment (Config.from_env), so every value is validated in one place. An error the parser
raises about a variable the file set is re-worded to name the file and the key.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from bucketvault.errors import InvalidArgument

# The TOML type a key takes. SECRET is a string never shown (config check masks it).
STR, INT, NUM, BOOL, LIST, SECRET = "string", "integer", "number", "boolean", "list", "secret"


class Setting(NamedTuple):
    """One variable: its TOML key ("" = environment only: client or process settings), the
    TOML type, and the default as README's table shows it."""

    key: str
    kind: str
    default: str


# Every BUCKETVAULT_* variable the code reads: one line each. A key with a dot lives in a
# [table] ("http.listen" is `listen` under `[http]`). README's "Configuration" table lists
# the same rows (tests/core/test_config_file.py holds them to it).
SETTINGS: dict[str, Setting] = {
    "BUCKETVAULT_CONFIG": Setting("", STR, ""),
    "BUCKETVAULT_LISTEN": Setting("listen", STR, "127.0.0.1:50051"),
    "BUCKETVAULT_DATA_DIR": Setting("data_dir", STR, ".bucketvault"),
    "BUCKETVAULT_STORE": Setting("store", STR, "sqlite:///<data>/bucketvault.sqlite"),
    "BUCKETVAULT_KEK": Setting("kek", STR, "file://<data>/kek.key"),
    "BUCKETVAULT_KEK_PREVIOUS": Setting("kek_previous", LIST, ""),
    "BUCKETVAULT_POLICY": Setting("policy", STR, "<data>/policy.json"),
    "BUCKETVAULT_ALLOW_INSECURE_ENDPOINTS": Setting("allow_insecure_endpoints", BOOL, "false"),
    "BUCKETVAULT_ALLOW_PLAINTEXT": Setting("allow_plaintext", BOOL, "false"),
    "BUCKETVAULT_DEFAULT_TTL_SECONDS": Setting("default_ttl_seconds", INT, "900"),
    "BUCKETVAULT_DEFAULT_MOUNT_MAX_TTL_SECONDS": Setting(
        "default_mount_max_ttl_seconds", INT, "3600"
    ),
    "BUCKETVAULT_GRPC_WORKERS": Setting("grpc_workers", INT, "16"),
    "BUCKETVAULT_WORKERS": Setting("workers", INT, "1"),
    "BUCKETVAULT_GRPC_MAX_RECEIVE_BYTES": Setting("grpc_max_receive_bytes", INT, "4194304"),
    "BUCKETVAULT_GRPC_MAX_SEND_BYTES": Setting("grpc_max_send_bytes", INT, "16777216"),
    "BUCKETVAULT_DRAIN_SECONDS": Setting("drain_seconds", INT, "20"),
    "BUCKETVAULT_BROWSER_ORIGINS": Setting("browser_origins", LIST, ""),
    "BUCKETVAULT_TLS_CERT_FILE": Setting("tls.cert_file", STR, ""),
    "BUCKETVAULT_TLS_KEY_FILE": Setting("tls.key_file", STR, ""),
    "BUCKETVAULT_TLS_CLIENT_CA_FILE": Setting("tls.client_ca_file", STR, ""),
    "BUCKETVAULT_AUDIT_JSONL": Setting("audit.jsonl", STR, ""),
    "BUCKETVAULT_AUDIT_WRITER_ID": Setting("audit.writer_id", STR, "random"),
    "BUCKETVAULT_AUDIT_RETENTION_DAYS": Setting("audit.retention_days", INT, "0"),
    "BUCKETVAULT_AUDIT_ARCHIVE_DIR": Setting("audit.archive_dir", STR, "<data>/audit-archive"),
    "BUCKETVAULT_METRICS_LISTEN": Setting("metrics.listen", STR, ""),
    "BUCKETVAULT_LOG_FORMAT": Setting("log.format", STR, "json"),
    "BUCKETVAULT_LOG_LEVEL": Setting("log.level", STR, "INFO"),
    "BUCKETVAULT_LIMIT_RPS": Setting("limits.rps", INT, "0"),
    "BUCKETVAULT_LIMIT_BURST": Setting("limits.burst", INT, "max(rps, 1)"),
    "BUCKETVAULT_LIMIT_CONCURRENCY": Setting("limits.concurrency", INT, "0"),
    "BUCKETVAULT_HTTP_LISTEN": Setting("http.listen", STR, ""),
    "BUCKETVAULT_HTTP_ALLOW_PLAINTEXT": Setting("http.allow_plaintext", BOOL, "false"),
    "BUCKETVAULT_HTTP_PUBLIC_URL": Setting("http.public_url", STR, "http://<listen>"),
    "BUCKETVAULT_HTTP_CORS_ORIGINS": Setting("http.cors_origins", LIST, ""),
    "BUCKETVAULT_HTTP_URL_TTL_SECONDS": Setting("http.url_ttl_seconds", INT, "600"),
    "BUCKETVAULT_HTTP_CACHE_MARGIN_SECONDS": Setting("http.cache_margin_seconds", INT, "60"),
    "BUCKETVAULT_HTTP_RATE_PER_SECOND": Setting("http.rate_per_second", INT, "20"),
    "BUCKETVAULT_HTTP_RATE_BURST": Setting("http.rate_burst", INT, "60"),
    "BUCKETVAULT_HTTP_REVOCATION_REFRESH_SECONDS": Setting(
        "http.revocation_refresh_seconds", INT, "10"
    ),
    "BUCKETVAULT_HTTP_THREADS": Setting("http.threads", INT, "8"),
    "BUCKETVAULT_HTTP_LINK_RATE_PER_SECOND": Setting("http.link_rate_per_second", INT, "50"),
    "BUCKETVAULT_HTTP_LINK_RATE_BURST": Setting("http.link_rate_burst", INT, "200"),
    "BUCKETVAULT_HTTP_NETWORK_MODE": Setting("http.network_mode", BOOL, "false"),
    "BUCKETVAULT_HTTP_ALLOW_CIDRS": Setting("http.allow_cidrs", LIST, ""),
    "BUCKETVAULT_HTTP_OIDC_JWKS_FILE": Setting("http.oidc_jwks_file", STR, ""),
    "BUCKETVAULT_HTTP_OIDC_JWKS_URL": Setting("http.oidc_jwks_url", STR, ""),
    "BUCKETVAULT_HTTP_OIDC_ISSUER": Setting("http.oidc_issuer", STR, ""),
    "BUCKETVAULT_HTTP_OIDC_AUDIENCE": Setting("http.oidc_audience", STR, ""),
    "BUCKETVAULT_HTTP_OIDC_COOKIE": Setting("http.oidc_cookie", STR, ""),
    "BUCKETVAULT_AWS_SERVICE_PRINCIPAL_ARN": Setting("aws.service_principal_arn", STR, ""),
    "BUCKETVAULT_AWS_STS_CONNECT_TIMEOUT_SECONDS": Setting(
        "aws.sts_connect_timeout_seconds", NUM, "3"
    ),
    "BUCKETVAULT_AWS_STS_TIMEOUT_SECONDS": Setting("aws.sts_timeout_seconds", NUM, "5"),
    "BUCKETVAULT_AWS_STS_BUDGET_SECONDS": Setting("aws.sts_budget_seconds", NUM, "8"),
    "BUCKETVAULT_AWS_S3_CONNECT_TIMEOUT_SECONDS": Setting(
        "aws.s3_connect_timeout_seconds", NUM, "3"
    ),
    "BUCKETVAULT_AWS_S3_TIMEOUT_SECONDS": Setting("aws.s3_timeout_seconds", NUM, "10"),
    "BUCKETVAULT_AWS_S3_MAX_ATTEMPTS": Setting("aws.s3_max_attempts", INT, "3"),
    "BUCKETVAULT_GCS_TOKEN_URI_ALLOWLIST": Setting("gcs.token_uri_allowlist", LIST, ""),
    "BUCKETVAULT_GCS_CONNECT_TIMEOUT_SECONDS": Setting("gcs.connect_timeout_seconds", NUM, "5"),
    "BUCKETVAULT_GCS_TIMEOUT_SECONDS": Setting("gcs.timeout_seconds", NUM, "10"),
    "BUCKETVAULT_GCS_MAX_ATTEMPTS": Setting("gcs.max_attempts", INT, "3"),
    "BUCKETVAULT_GCS_TOKEN_TIMEOUT_SECONDS": Setting("gcs.token_timeout_seconds", NUM, "10"),
    "BUCKETVAULT_GCP_CREDENTIALS_FILE": Setting("gcp.credentials_file", STR, ""),
    "BUCKETVAULT_GCP_IAM_CREDENTIALS_ENDPOINT": Setting(
        "gcp.iam_credentials_endpoint", STR, "https://iamcredentials.googleapis.com"
    ),
    "BUCKETVAULT_GCP_STS_ENDPOINT": Setting(
        "gcp.sts_endpoint", STR, "https://sts.googleapis.com/v1/token"
    ),
    "BUCKETVAULT_AZURE_AUTHORITY_HOST": Setting(
        "azure.authority_host", STR, "https://login.microsoftonline.com"
    ),
    "BUCKETVAULT_AZURE_CA_BUNDLE": Setting("azure.ca_bundle", STR, ""),
    "BUCKETVAULT_AZURE_DELEGATION_KEY_LIFETIME": Setting(
        "azure.delegation_key_lifetime", INT, "601200"
    ),
    "BUCKETVAULT_AZURE_DELEGATION_KEY_REFRESH_AHEAD": Setting(
        "azure.delegation_key_refresh_ahead", INT, "86400"
    ),
    "BUCKETVAULT_AZURE_RETRY_TOTAL": Setting("azure.retry_total", INT, "2"),
    "BUCKETVAULT_AZURE_TIMEOUT_SECONDS": Setting("azure.timeout_seconds", INT, "20"),
    "BUCKETVAULT_AZURE_APP_CLIENT_ID": Setting("azure.app_client_id", STR, ""),
    "BUCKETVAULT_AZURE_APP_CLIENT_SECRET": Setting("azure.app_client_secret", SECRET, ""),
    "BUCKETVAULT_AZURE_APP_CERTIFICATE_FILE": Setting("azure.app_certificate_file", STR, ""),
    # The CLI's own settings (client side): not server configuration, so not in the file.
    "BUCKETVAULT_ADDRESS": Setting("", STR, "127.0.0.1:50051"),
    "BUCKETVAULT_TOKEN": Setting("", SECRET, ""),
    "BUCKETVAULT_TOKEN_FILE": Setting("", STR, ".bucketvault/admin.token"),
    "BUCKETVAULT_TLS_CA": Setting("", STR, ""),
    "BUCKETVAULT_TLS_CERT": Setting("", STR, ""),
    "BUCKETVAULT_TLS_KEY": Setting("", STR, ""),
    "BUCKETVAULT_DEBUG": Setting("", BOOL, ""),
}

_BY_KEY = {s.key: name for name, s in SETTINGS.items() if s.key}
_TABLES = frozenset(k.split(".", 1)[0] for k in _BY_KEY if "." in k)


def label(key: str) -> str:
    """How an error names a key: `listen`, `[http] rate_per_second`."""
    table, _, leaf = key.rpartition(".")
    return f"[{table}] {leaf}" if table else leaf


def _bad(path: Path, where: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"{path}: {where}: {problem}", reason="INVALID_CONFIG")


def _unknown(path: Path, key: str, known: Any) -> InvalidArgument:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {label(close[0])}?)" if close else ""
    return _bad(path, label(key), f"unknown key{hint}")


def _spell(path: Path, key: str, kind: str, value: Any) -> str:
    """A TOML value as the environment would spell it, or an error naming the key."""
    where = label(key)
    if kind in (STR, SECRET) and isinstance(value, str):
        return value
    if kind == BOOL and isinstance(value, bool):
        return "true" if value else "false"
    # bool is an int in Python; `workers = true` is a mistake, not 1.
    if kind == INT and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind == NUM and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if kind == LIST and isinstance(value, list) and all(isinstance(v, str) for v in value):
        # The environment's lists are comma-separated; an item with a comma would split.
        if any("," in v for v in value):
            raise _bad(path, where, "an item may not contain a comma")
        return ",".join(value)
    wanted = {
        STR: "a string",
        SECRET: "a string",
        BOOL: "true or false",
        INT: "an integer",
        NUM: "a number",
        LIST: "a list of strings",
    }[kind]
    raise _bad(path, where, f"must be {wanted}")


@dataclass(frozen=True)
class FileLayer:
    """The file's settings as BUCKETVAULT_* variables, and which key set each."""

    path: Path
    # May hold secrets (a DSN password, the Azure app's client secret).
    values: Mapping[str, str] = field(repr=False)

    @contextmanager
    def blamed(self, set_elsewhere: Mapping[str, str]) -> Iterator[None]:
        """Re-word a configuration error about a variable this file set (and nothing above
        it overrode) so that it names the file and the key instead."""
        try:
            yield
        except InvalidArgument as exc:
            reworded = self.reword(exc.message, set_elsewhere)
            if reworded is None:
                raise
            raise InvalidArgument(reworded, reason=exc.reason) from None

    def reword(self, message: str, set_elsewhere: Mapping[str, str]) -> str | None:
        """`path: [table] key: problem` for a message about a variable from this file."""
        if message.startswith(f"{self.path}: "):
            return None  # already names the file (an inner check re-worded it)
        for name in re.findall(r"BUCKETVAULT_[A-Z0-9_]+", message):
            if name in self.values and not set_elsewhere.get(name):
                where = label(SETTINGS[name].key)
                # "NAME must be ..." reads "path: [table] key: must be ..."; other messages
                # (several variables, NAME=value) are kept whole after the key.
                rest = message.removeprefix(f"{name} ")
                return f"{self.path}: {where}: {rest}"
        return None


def read(path: Path) -> FileLayer:
    """Parse the file; an unreadable file, bad TOML, an unknown key or a value of the wrong
    type is an error naming the file (and the key)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise InvalidArgument(
            f"{path}: cannot read the config file ({exc.strerror})", reason="INVALID_CONFIG"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's messages give a line and column, not the text, so a secret is not quoted.
        raise InvalidArgument(f"{path}: not valid TOML: {exc}", reason="INVALID_CONFIG") from None
    values: dict[str, str] = {}
    for key, value in _flatten(path, data):
        name = _BY_KEY.get(key)
        if name is None:
            raise _unknown(path, key, _BY_KEY)
        values[name] = _spell(path, key, SETTINGS[name].kind, value)
    return FileLayer(path, values)


def _flatten(path: Path, data: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for top, value in data.items():
        if not isinstance(value, dict):
            yield top, value
            continue
        if top not in _TABLES:
            close = difflib.get_close_matches(top, sorted(_TABLES), n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise _bad(path, f"[{top}]", f"unknown table{hint}")
        for leaf, inner in value.items():
            if isinstance(inner, dict):
                raise _bad(path, f"[{top}.{leaf}]", "unknown table (tables do not nest)")
            yield f"{top}.{leaf}", inner


def layer_for(merged: Mapping[str, str]) -> FileLayer | None:
    """The file BUCKETVAULT_CONFIG names (a flag sets it too), or None without one."""
    raw = merged.get("BUCKETVAULT_CONFIG", "").strip()
    return read(Path(raw)) if raw else None


# A password in a URL's user info, and keyword parameters that carry credentials (a DSN's
# `password=`, a URL's `?token=`): config check shows the rest of the value.
_USERINFO = re.compile(r"://([^:/@\s]*):[^@\s]*@")
_BARE_USERINFO = re.compile(r"://[^:/@\s]+@")
_SECRET_PARAM = re.compile(
    r"(?i)\b((?:ssl)?password|passwd|pwd|secret|token|access_key|sig|signature|key)=[^&\s]*"
)


def masked(name: str, value: str) -> str:
    """A value fit to print: secrets hidden, credentials in URIs and DSNs hidden."""
    if not value:
        return value
    setting = SETTINGS.get(name)
    if setting is not None and setting.kind == SECRET:
        return "***"
    value = _USERINFO.sub(r"://\1:***@", value)
    value = _BARE_USERINFO.sub("://***@", value)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", value)


__all__ = [
    "BOOL",
    "INT",
    "LIST",
    "NUM",
    "SECRET",
    "SETTINGS",
    "STR",
    "FileLayer",
    "Setting",
    "label",
    "layer_for",
    "masked",
    "read",
]
