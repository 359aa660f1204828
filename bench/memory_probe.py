"""Run in a fresh process: the processor's peak memory on one SQS event, above its warmed-up baseline.

Usage: python -m bench.memory_probe WARMUP_EVENT.json MEASURED_EVENT.json; prints one JSON line.
"""

import json
import resource
import sys
from pathlib import Path

from infra.local import runner


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main(warmup: Path, measured: Path) -> None:
    # The warm-up mail loads every module and client, as a warm Lambda environment has them.
    runner.invoke("processor", json.loads(warmup.read_text()))
    baseline = _max_rss_bytes()
    response = runner.invoke("processor", json.loads(measured.read_text()))
    print(json.dumps({"baseline": baseline, "peak": _max_rss_bytes(), "response": response}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
