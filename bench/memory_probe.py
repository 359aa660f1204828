"""Run in a fresh process: the processor's peak memory on one SQS event, above its warmed-up baseline.

Usage: python -m bench.memory_probe WARMUP_EVENT.json MEASURED_EVENT.json; prints one JSON line.
"""

import json
import sys
from pathlib import Path

from infra.local import runner


def _max_rss_bytes() -> int:
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries it over from the
    parent across fork and exec, so a child of a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(warmup: Path, measured: Path) -> None:
    # The warm-up mail loads every module and client, as a warm Lambda environment has them.
    runner.invoke("processor", json.loads(warmup.read_text()))
    baseline = _max_rss_bytes()
    response = runner.invoke("processor", json.loads(measured.read_text()))
    print(json.dumps({"baseline": baseline, "peak": _max_rss_bytes(), "response": response}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
