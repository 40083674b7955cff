"""`bucketvault config check`: the effective configuration, where each value came from, and
whether the server would start with it (offline: reads the environment and the file only).

Precedence, highest first: a flag, the environment, the TOML file, the default. Secrets are
never printed: token values and client secrets show as ***, credentials in URIs and DSNs
(a password in BUCKETVAULT_STORE) are masked, the rest of the value is shown.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from bucketvault import configfile
from bucketvault.cli.common import EXIT_USAGE, CliError
from bucketvault.config import Config
from bucketvault.errors import InvalidArgument
from bucketvault.providers.aws.settings import AwsSettings
from bucketvault.providers.azure.settings import AzureConfig
from bucketvault.providers.gcs.identity import GcpIdentityConfig

COLUMNS = ("variable", "key", "value", "source")

# Defaults computed from other settings (the data directory): shown as the server resolves them.
_RESOLVED: dict[str, Callable[[Config], str]] = {
    "BUCKETVAULT_DATA_DIR": lambda c: str(c.data_dir),
    "BUCKETVAULT_STORE": lambda c: c.store_url,
    "BUCKETVAULT_KEK": lambda c: c.kek_uri,
    "BUCKETVAULT_POLICY": lambda c: str(c.policy_file),
    "BUCKETVAULT_AUDIT_ARCHIVE_DIR": lambda c: str(c.audit_archive_dir),
}


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    # The same keyword overrides `serve` passes to Config.from_env.
    return {
        "config": args.config or "",
        "listen": args.listen or "",
        "data_dir": args.data_dir or "",
    }


def effective(env: Mapping[str, str], overrides: Mapping[str, str]) -> list[dict[str, str]]:
    """Validate as the server would, then one row per setting: value (masked) and source.
    A bad setting raises InvalidArgument naming it (the file's key when the file set it)."""
    flags = {f"BUCKETVAULT_{k.upper()}": v for k, v in overrides.items() if v}
    config = Config.from_env(env, **overrides)
    merged = {**env, **flags}
    layer = configfile.layer_for(merged)
    values = {**(layer.values if layer else {}), **{k: v for k, v in merged.items() if v}}
    # The providers read their own settings at start-up (build_service); check them too.
    if layer is not None:
        with layer.blamed(merged):
            _providers(config, values)
    else:
        _providers(config, values)
    rows = []
    for name, setting in configfile.SETTINGS.items():
        if flags.get(name):
            source = "flag"
        elif env.get(name, "").strip():
            source = "env"
        elif layer is not None and name in layer.values:
            source = "file"
        else:
            source = "default"
        value = values.get(name, "") if source != "default" else setting.default
        if name in _RESOLVED:
            value = _RESOLVED[name](config)
        rows.append(
            {
                "variable": name,
                "key": setting.key or "-",
                "value": configfile.masked(name, value),
                "source": source,
            }
        )
    return rows


def _providers(config: Config, values: Mapping[str, str]) -> None:
    AwsSettings.from_env(values)
    AzureConfig.from_env(values)
    GcpIdentityConfig.from_env(values, config.url_policy)


def _table(rows: list[dict[str, str]]) -> str:
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += [
        "  ".join(r[c].ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()
        for r in rows
    ]
    return "\n".join(lines)


def config_check(args: argparse.Namespace) -> int:
    """Print the effective configuration; exit 2 with one line naming the key when bad."""
    try:
        rows = effective(os.environ, _overrides(args))
    except InvalidArgument as exc:
        if args.json:
            print(json.dumps({"ok": False, "error": exc.message}), flush=True)
        raise CliError(f"invalid configuration: {exc.message}", EXIT_USAGE) from None
    if args.json:
        doc: dict[str, Any] = {"ok": True, "settings": rows}
        print(json.dumps(doc, indent=2))
    else:
        print(_table(rows))
        print("configuration ok")
    return 0


def add_parser(sub: Any) -> None:
    """The `config` command group (sub: the top-level subparsers)."""
    c = sub.add_parser(
        "config", help="the server's effective configuration (offline)"
    ).add_subparsers(dest="sub", required=True)
    ck = c.add_parser("check", help="each setting, its value and source; exit 2 when invalid")
    ck.add_argument("--config", help="the TOML config file (BUCKETVAULT_CONFIG)")
    ck.add_argument("--listen", help="as `serve --listen`")
    ck.add_argument("--data-dir", help="as `serve --data-dir`")
    ck.add_argument("--json", action="store_true", default=argparse.SUPPRESS)


OFFLINE = {("config", "check"): config_check}

__all__ = ["OFFLINE", "add_parser", "config_check", "effective"]
