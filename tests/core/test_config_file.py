"""The TOML config file under the environment, `bucketvault config check`, `serve --config`,
and README's table of every BUCKETVAULT_* variable."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import bucketvault
from bucketvault import configfile
from bucketvault.cli.config import effective
from bucketvault.config import Config
from bucketvault.errors import InvalidArgument

SRC = Path(bucketvault.__file__).resolve().parents[1]
ROOT = SRC.parent
CANARY_PW = "CanaryPw7f3e"
CANARY_TOKEN = "CanaryTok91ab"
CANARY_SECRET = "CanarySecret44d0"


def _file(tmp_path: Path, text: str, name: str = "bucketvault.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _env(**extra: str) -> dict[str, str]:
    # The test's own environment without any BUCKETVAULT_* the caller may have set.
    base = {k: v for k, v in os.environ.items() if not k.startswith("BUCKETVAULT_")}
    return {**base, "PYTHONPATH": str(SRC), **extra}


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        'listen = "127.0.0.1:7000"\ngrpc_workers = 3\ndrain_seconds = 7\n'
        '[http]\nlisten = "127.0.0.1:8081"\nthreads = 4\n[audit]\nretention_days = 30\n',
    )
    env = {
        "BUCKETVAULT_CONFIG": str(path),
        "BUCKETVAULT_DRAIN_SECONDS": "9",
        "BUCKETVAULT_HTTP_THREADS": "5",
        "BUCKETVAULT_LISTEN": "127.0.0.1:7001",
        # Empty is unset in the environment's convention: the file's value stands.
        "BUCKETVAULT_GRPC_WORKERS": "",
    }
    config = Config.from_env(env, listen="127.0.0.1:7002")
    assert config.listen == "127.0.0.1:7002"  # flag over env over file
    assert config.drain_seconds == 9  # env over file
    assert config.grpc_workers == 3  # file over default
    assert config.http is not None and config.http.threads == 5 and config.http.rate_burst == 60
    assert config.audit_retention_days == 30
    assert config.default_ttl_seconds == 900  # default
    # Without the file, the same environment gives the defaults back.
    bare = Config.from_env({k: v for k, v in env.items() if k != "BUCKETVAULT_CONFIG"})
    assert bare.grpc_workers == 16 and bare.http is None and bare.audit_retention_days == 0
    # Providers read config.env: the file's settings are there, under the environment.
    assert config.env["BUCKETVAULT_GRPC_WORKERS"] == "3"
    assert config.env["BUCKETVAULT_HTTP_THREADS"] == "5"


def test_the_config_flag_names_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "grpc_workers = 2\n")
    assert Config.from_env({}, config=str(path)).grpc_workers == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[http]\nrate_per_second = 0\nlisten = '127.0.0.1:1'\n",
            "[http] rate_per_second: must be an integer between 1 and 100000",
        ),
        ("[http]\nrate_per_second = 'fast'\n", "[http] rate_per_second: must be an integer"),
        ("grpc_workers = true\n", "grpc_workers: must be an integer"),
        ("grpc_workers = 1.5\n", "grpc_workers: must be an integer"),
        ("allow_plaintext = 'yes'\n", "allow_plaintext: must be true or false"),
        ("browser_origins = 'https://a.example'\n", "browser_origins: must be a list of strings"),
        (
            "browser_origins = ['https://a.example,https://b.example']\n",
            "browser_origins: an item may not contain a comma",
        ),
        ("browser_origins = ['ftp://a.example']\n", "browser_origins: must be https://host"),
        ("listen = 5\n", "listen: must be a string"),
        ("lisen = '127.0.0.1:1'\n", "lisen: unknown key (did you mean listen?)"),
        ("[http]\nrate = 5\n", "[http] rate: unknown key"),
        ("[htp]\nlisten = '127.0.0.1:1'\n", "[htp]: unknown table (did you mean [http]?)"),
        ("[http.extra]\nx = 1\n", "[http.extra]: unknown table"),
        ("listen = '0.0.0.0:9'\n", "listen: BUCKETVAULT_LISTEN=0.0.0.0:9 is not a loopback"),
        ("[tls]\ncert_file = '/x.pem'\n", "[tls] cert_file: set both"),
        ("[aws]\nsts_budget_seconds = 900\n", "[aws] sts_budget_seconds: must be a number"),
        ("[metrics]\nlisten = 'nope'\n", "[metrics] listen: must be host:port"),
        ("[azure]\nretry_total = 99\n", "[azure] retry_total: must be an integer between 0 and 10"),
        ("listen = \n", "not valid TOML"),
    ],
)
def test_each_error_names_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(InvalidArgument) as err:
        # Provider settings too: config check reads them as start-up does.
        effective({}, {"config": str(path), "listen": "", "data_dir": str(tmp_path / "d")})
    assert err.value.message.startswith(f"{path}: "), err.value.message
    assert expected in err.value.message, err.value.message
    assert err.value.reason == "INVALID_CONFIG"


def test_an_environment_value_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, "grpc_workers = 4\n")
    env = {"BUCKETVAULT_CONFIG": str(path), "BUCKETVAULT_GRPC_WORKERS": "0"}
    with pytest.raises(InvalidArgument) as err:
        Config.from_env(env)
    assert err.value.message.startswith("BUCKETVAULT_GRPC_WORKERS must be an integer between")
    assert str(path) not in err.value.message


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read the config file"):
        Config.from_env({"BUCKETVAULT_CONFIG": str(tmp_path / "absent.toml")})


def test_every_toml_key_can_be_set(tmp_path: Path) -> None:
    samples = {
        configfile.STR: "'x'",
        configfile.SECRET: "'x'",
        configfile.INT: "1",
        configfile.NUM: "1.5",
        configfile.BOOL: "true",
        configfile.LIST: "['a', 'b']",
    }
    top: list[str] = []
    tables: dict[str, list[str]] = {}
    for setting in configfile.SETTINGS.values():
        if not setting.key:
            continue
        table, _, leaf = setting.key.rpartition(".")
        line = f"{leaf} = {samples[setting.kind]}"
        (tables.setdefault(table, []) if table else top).append(line)
    text = (
        "\n".join(top)
        + "\n"
        + "".join(f"[{t}]\n" + "\n".join(lines) + "\n" for t, lines in tables.items())
    )
    layer = configfile.read(_file(tmp_path, text))
    assert set(layer.values) == {n for n, s in configfile.SETTINGS.items() if s.key}
    assert layer.values["BUCKETVAULT_KEK_PREVIOUS"] == "a,b"
    assert layer.values["BUCKETVAULT_ALLOW_PLAINTEXT"] == "true"
    assert CANARY_SECRET not in repr(layer)


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        (
            "BUCKETVAULT_STORE",
            f"postgresql://bv:{CANARY_PW}@db:5432/bv",
            "postgresql://bv:***@db:5432/bv",
        ),
        ("BUCKETVAULT_STORE", f"postgresql://db/bv?user=bv&password={CANARY_PW}", "password=***"),
        ("BUCKETVAULT_STORE", f"host=db user=bv password={CANARY_PW}", "password=***"),
        ("BUCKETVAULT_KEK", f"https://{CANARY_TOKEN}@kms.example/k", "https://***@kms.example/k"),
        ("BUCKETVAULT_KEK_PREVIOUS", f"file:///a,x://u:{CANARY_PW}@h", "x://u:***@h"),
        ("BUCKETVAULT_TOKEN", CANARY_TOKEN, "***"),
        ("BUCKETVAULT_AZURE_APP_CLIENT_SECRET", CANARY_SECRET, "***"),
        ("BUCKETVAULT_STORE", "sqlite:////var/lib/bv.sqlite?synchronous=full", "synchronous=full"),
    ],
)
def test_masking(name: str, value: str, shown: str) -> None:
    out = configfile.masked(name, value)
    assert shown in out
    for canary in (CANARY_PW, CANARY_TOKEN, CANARY_SECRET):
        assert canary not in out


def _check(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bucketvault.cli.main", "config", "check", *args],
        check=False,
        env=_env(**env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


GOOD = f"""
listen = "127.0.0.1:7443"
store = "postgresql://bv:{CANARY_PW}@db.internal:5432/bv?sslmode=require"
grpc_workers = 4

[http]
listen = "127.0.0.1:8080"
rate_per_second = 50

[azure]
app_client_id = "00000000-0000-0000-0000-000000000001"
app_client_secret = "{CANARY_SECRET}"
"""


def test_config_check_a_good_file_masks_secrets(tmp_path: Path) -> None:
    path = _file(tmp_path, GOOD)
    proc = _check(
        tmp_path,
        "--config",
        str(path),
        "--json",
        BUCKETVAULT_TOKEN=CANARY_TOKEN,
        BUCKETVAULT_GRPC_WORKERS="6",
    )
    assert proc.returncode == 0, proc.stderr
    for canary in (CANARY_PW, CANARY_TOKEN, CANARY_SECRET):
        assert canary not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True
    rows = {r["variable"]: r for r in doc["settings"]}
    assert set(rows) == set(configfile.SETTINGS)
    assert rows["BUCKETVAULT_CONFIG"]["source"] == "flag"
    assert rows["BUCKETVAULT_LISTEN"] == {
        "variable": "BUCKETVAULT_LISTEN",
        "key": "listen",
        "value": "127.0.0.1:7443",
        "source": "file",
    }
    assert rows["BUCKETVAULT_GRPC_WORKERS"]["value"] == "6"
    assert rows["BUCKETVAULT_GRPC_WORKERS"]["source"] == "env"
    assert rows["BUCKETVAULT_HTTP_RATE_PER_SECOND"]["source"] == "file"
    assert rows["BUCKETVAULT_DEFAULT_TTL_SECONDS"] == {
        "variable": "BUCKETVAULT_DEFAULT_TTL_SECONDS",
        "key": "default_ttl_seconds",
        "value": "900",
        "source": "default",
    }
    assert rows["BUCKETVAULT_STORE"]["value"].startswith("postgresql://bv:***@db.internal")
    assert rows["BUCKETVAULT_AZURE_APP_CLIENT_SECRET"]["value"] == "***"
    assert rows["BUCKETVAULT_TOKEN"] == {
        "variable": "BUCKETVAULT_TOKEN",
        "key": "-",
        "value": "***",
        "source": "env",
    }
    # The table for people: the same facts, the same masking; a flag wins over the file.
    proc = _check(
        tmp_path,
        "--config",
        str(path),
        "--listen",
        "127.0.0.1:7444",
        BUCKETVAULT_TOKEN=CANARY_TOKEN,
    )
    assert proc.returncode == 0, proc.stderr
    for canary in (CANARY_PW, CANARY_TOKEN, CANARY_SECRET):
        assert canary not in proc.stdout + proc.stderr
    listen = next(ln for ln in proc.stdout.splitlines() if ln.startswith("BUCKETVAULT_LISTEN "))
    assert listen.split() == ["BUCKETVAULT_LISTEN", "listen", "127.0.0.1:7444", "flag"]
    assert proc.stdout.rstrip().endswith("configuration ok")


def test_config_check_a_bad_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = _file(tmp_path, GOOD.replace("rate_per_second = 50", "rate_per_second = 0"))
    proc = _check(tmp_path, "--config", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"{path}: [http] rate_per_second: must be an integer between 1 and 100000" in lines[0]
    assert CANARY_PW not in proc.stderr and CANARY_SECRET not in proc.stderr
    # BUCKETVAULT_CONFIG names the file as well as --config does; --json says so on stdout.
    proc = _check(tmp_path, "--json", BUCKETVAULT_CONFIG=str(path))
    assert proc.returncode == 2
    assert "[http] rate_per_second" in json.loads(proc.stdout)["error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    data = tmp_path / "from-file"
    listen = f"127.0.0.1:{_free_port()}"
    path = _file(
        tmp_path,
        f'listen = "{listen}"\ndata_dir = "{data}"\ngrpc_workers = 2\n[log]\nformat = "text"\n',
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bucketvault.cli.main", "serve", "--config", str(path)],
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = ""
        for line in proc.stdout:
            if "listening on" in line:
                address = line.rsplit(" ", 1)[1].strip()
                break
        assert address, "serve exited early"
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        assert address == listen
        yield address, data
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_serve_uses_the_config_file(served: tuple[str, Path]) -> None:
    address, data = served
    # The data directory named in the file was bootstrapped, not the default one.
    assert (data / "admin.token").exists() and (data / "policy.json").exists()
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_serve_refuses_a_bad_file_naming_the_key(tmp_path: Path) -> None:
    path = _file(tmp_path, f'data_dir = "{tmp_path / "d"}"\n[log]\nformat = "xml"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "bucketvault.cli.main", "serve", "--config", str(path)],
        check=False,
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"{path}: [log] format: must be json or text" in proc.stderr
    assert "INVALID_CONFIG" in proc.stderr and "listening" not in proc.stdout


def _readme_rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `BUCKETVAULT_"):
            cells = [c.strip().strip("`") for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def test_every_variable_the_code_reads_is_in_the_readme_table() -> None:
    found: set[str] = set()
    for path in (SRC / "bucketvault").rglob("*.py"):
        found |= set(re.findall(r"BUCKETVAULT_[A-Z0-9_]+", path.read_text()))
    # Names ending in "_" are prefixes (BUCKETVAULT_HTTP_* in prose, f"{_APP}CLIENT_ID").
    found = {n for n in found if not n.endswith("_")}
    assert found, "the grep found nothing: the source layout changed"
    rows = _readme_rows()
    missing = sorted(found - set(rows))
    assert not missing, f"document these in README's Configuration table: {missing}"
    uncatalogued = sorted(found - set(configfile.SETTINGS))
    assert not uncatalogued, f"add these to configfile.SETTINGS: {uncatalogued}"
    for name, setting in configfile.SETTINGS.items():
        assert name in rows, f"{name} is in configfile.SETTINGS but not README's table"
        _, key, default, _meaning = rows[name]
        assert key == (setting.key or "-"), f"{name}: README says TOML key {key!r}"
        assert default == setting.default, f"{name}: README says default {default!r}"
