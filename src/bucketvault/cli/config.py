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
from contextlib import AbstractContextManager, nullcontext
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


def _flags(overrides: Mapping[str, str]) -> dict[str, str]:
    return {f"BUCKETVAULT_{k.upper()}": v for k, v in overrides.items() if v}


def blamed(env: Mapping[str, str], overrides: Mapping[str, str]) -> AbstractContextManager[None]:
    """Inside it, a configuration error about a variable the TOML file set names the file and
    the key (Config.from_env does this itself; start-up's later checks need it too)."""
    merged = {**env, **_flags(overrides)}
    layer = configfile.layer_for(merged)
    return layer.blamed(merged) if layer is not None else nullcontext()


def load(env: Mapping[str, str], overrides: Mapping[str, str]) -> Config:
    """The Config `serve` runs with, the providers' own settings validated too (they are read
    again by build_service): `serve` and `config check` accept and refuse the same things."""
    with blamed(env, overrides):
        config = Config.from_env(env, **overrides)
        AwsSettings.from_env(config.env)
        AzureConfig.from_env(config.env)
        GcpIdentityConfig.from_env(config.env, config.url_policy)
    return config


def effective(env: Mapping[str, str], overrides: Mapping[str, str]) -> list[dict[str, str]]:
    """Validate as `serve` would, then one row per setting: value (masked) and source.
    A bad setting raises InvalidArgument naming it (the file's key when the file set it)."""
    config = load(env, overrides)
    flags = _flags(overrides)
    layer = configfile.layer_for({**env, **flags})
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
        # config.env: the environment, the flags and the file's settings, merged.
        value = config.env.get(name, "") if source != "default" else setting.default
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

__all__ = ["OFFLINE", "add_parser", "blamed", "config_check", "effective", "load"]
