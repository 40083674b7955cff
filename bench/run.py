"""`make bench`: every benchmark, one after another, each in its own process.

Each script starts the real server, measures URLs/s (or calls/s) delivered to a gRPC
client, and prints the ratio against a baseline measured in the same run on the same
machine (the official SDK; the health Check for unary SignURL). The Azure part runs only
where Azurite is installed. Everything printed is also written to bench/results.json
with the machine and the command. ``--only bench_workers.py`` (repeatable) runs just
those scripts and updates their entries in bench/results.json, keeping the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from _common import machine

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "bench_aws.py",
    "bench_gcs.py",
    "bench_azure.py",
    "bench_unary.py",
    # serve --workers 2 vs 1, unary SignURL from separate client processes.
    "bench_workers.py",
    # ListPrefix entries/s vs boto3 listing moto; server peak RSS, 10k vs 200k keys.
    "bench_list.py",
)


def _only(argv: list[str]) -> tuple[list[str], list[str]]:
    """(--only script names, the arguments every script gets)."""
    only: list[str] = []
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--only":
            only.append(next(it, ""))
        elif arg.startswith("--only="):
            only.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    unknown = set(only) - set(SCRIPTS)
    if unknown:
        sys.exit(f"--only: no such script {sorted(unknown)}; one of {', '.join(SCRIPTS)}")
    return only, rest


def main() -> int:
    only, argv = _only(sys.argv[1:])
    print(f"machine: {machine()}")
    failed = 0
    results = HERE / "results.json"
    previous = json.loads(results.read_text()).get("scripts", {}) if only else {}
    report: dict[str, object] = {
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, "bench/run.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        # A partial run keeps the other scripts' last figures (each says its own command).
        "scripts": previous,
    }
    for name in only or SCRIPTS:
        print(f"\n=== {name} ===", flush=True)
        result = subprocess.run(
            [sys.executable, str(HERE / name), *argv],
            check=False,
            capture_output=True,
            text=True,
        )
        print(result.stdout, end="", flush=True)
        print(result.stderr, end="", file=sys.stderr, flush=True)
        lines = result.stdout.splitlines()
        figures = [json.loads(x[7:]) for x in lines if x.startswith("RESULT ")]
        report["scripts"][name] = {  # type: ignore[index]
            "command": " ".join(["bench/" + name, *argv]),
            "date": report["date"],
            "returncode": result.returncode,
            "output": [x for x in lines if not x.startswith("RESULT ")],
            **({"figures": figures[0]} if figures else {}),
        }
        failed += result.returncode != 0
    results.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
