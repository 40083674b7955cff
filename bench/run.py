"""`make bench`: every benchmark, one after another, each in its own process.

Each script starts the real server, measures URLs/s (or calls/s) delivered to a gRPC
client, and prints the ratio against a baseline measured in the same run on the same
machine (the official SDK; the health Check for unary SignURL). The Azure part runs only
where Azurite is installed. Everything printed is also written to bench/results.json
with the machine and the command.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from _common import machine

HERE = Path(__file__).resolve().parent
SCRIPTS = ("bench_aws.py", "bench_gcs.py", "bench_azure.py", "bench_unary.py")


def main() -> int:
    print(f"machine: {machine()}")
    failed = 0
    report: dict[str, object] = {
        "machine": machine(),
        "command": " ".join([Path(sys.executable).name, "bench/run.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "scripts": {},
    }
    for name in SCRIPTS:
        print(f"\n=== {name} ===", flush=True)
        result = subprocess.run(
            [sys.executable, str(HERE / name), *sys.argv[1:]],
            check=False,
            capture_output=True,
            text=True,
        )
        print(result.stdout, end="", flush=True)
        print(result.stderr, end="", file=sys.stderr, flush=True)
        lines = result.stdout.splitlines()
        figures = [json.loads(x[7:]) for x in lines if x.startswith("RESULT ")]
        report["scripts"][name] = {  # type: ignore[index]
            "returncode": result.returncode,
            "output": [x for x in lines if not x.startswith("RESULT ")],
            **({"figures": figures[0]} if figures else {}),
        }
        failed += result.returncode != 0
    (HERE / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
