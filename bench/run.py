"""`make bench`: every provider's benchmark, one after another, each in its own process.

Each script starts the real server, measures URLs/s delivered to a gRPC client, and
prints the ratio against the official SDK measured in the same run on the same machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _common import machine

HERE = Path(__file__).resolve().parent
SCRIPTS = ("bench_aws.py", "bench_gcs.py", "bench_azure.py")


def main() -> int:
    print(f"machine: {machine()}")
    failed = 0
    for name in SCRIPTS:
        print(f"\n=== {name} ===", flush=True)
        result = subprocess.run([sys.executable, str(HERE / name), *sys.argv[1:]], check=False)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
