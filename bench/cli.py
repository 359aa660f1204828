"""How fast the `mail2ticket` command answers: `--help`, and a table command against a local stack, each run
as a new process the way a person or a script runs it. Prints each command's median and best wall time and
its median CPU time, beside a bare botocore scan of the same table in a new process (what any Python program
pays for one request: a busy machine slows both), then `cli_start_s=`: the slower median, to be under 0.3 s.

The stack is the running one of `make up` when there is one (its tickets listed as they are), else a moto
server started here with 20 tickets written in it.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from infra.local.background import STACK_FILE, STATE_DIR, read_stack, running
from infra.local.stack import LocalStack

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
TICKETS = 20
TARGET_S = 0.3
COMMAND = Path(sys.executable).parent / "mail2ticket"


def _seed_tickets() -> None:
    from mail2ticket.store.models import LogEntry, TicketItem

    for n in range(1, TICKETS + 1):
        ref = f"R-{n:06d}"
        TicketItem(
            pk=TicketItem.key(ref),
            ref=ref,
            ticket_class="UserRequest",
            title=f"Request number {n}",
            description="Please help.",
            caller_email=f"caller{n}@example.org",
            inbox_id="support",
            created_at=1_700_000_000 + n,
            updated_at=1_700_000_000 + n,
        ).save()
        LogEntry(
            pk=TicketItem.key(ref),
            sk=f"log#{1_700_000_100 + n:012d}#support#1:{n}",
            author_email=f"caller{n}@example.org",
            text="Any news?",
            inbox_id="support",
            message_key=f"1:{n}",
            created_at=1_700_000_100 + n,
        ).save()


def _measure(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Median and best wall time, and median CPU time (user + system) of RUNS runs, after one warm-up run."""
    walls, cpus = [], []
    for run in range(RUNS + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
        if run:  # the first run compiles what changed and warms the file cache
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def _report(name: str, argv: list[str], env: dict[str, str], command: Path = COMMAND) -> float:
    median, best, cpu = _measure([str(command), *argv], env)
    print(f"{name:<32} median {median:.3f} s  best {best:.3f} s  cpu {cpu:.3f} s  ({RUNS} runs)")
    return median


def _table_command(cli_env: dict[str, str], stack_env: dict[str, str]) -> float:
    """`tickets ls --local`, then the baseline beside it: one scan of the same table with bare botocore."""
    table_s = _report("mail2ticket tickets ls --local", ["tickets", "ls", "--local"], cli_env)
    table = stack_env["TICKETS_TABLE"]
    scan = (
        f"import botocore.session as s; s.get_session().create_client('dynamodb').scan(TableName='{table}')"
    )
    _report("baseline: one botocore scan", ["-c", scan], {**cli_env, **stack_env}, Path(sys.executable))
    return table_s


def main() -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "M2T_"))}
    print(f"mail2ticket start time, target under {TARGET_S} s")
    help_s = _report("mail2ticket --help", ["--help"], env)
    stack = read_stack(STATE_DIR)
    if stack is not None and running(stack):
        print(f"against the running local stack ({STATE_DIR / STACK_FILE})")
        table_s = _table_command(env, stack["environment"])
    else:
        with LocalStack(mail=False) as local, tempfile.TemporaryDirectory() as tmp:
            _seed_tickets()
            stack_file = Path(tmp) / STACK_FILE
            stack_file.write_text(json.dumps({"pid": os.getpid(), "environment": local.client_environment()}))
            print(f"against a moto server started here, {TICKETS} tickets")
            table_s = _table_command({**env, "M2T_LOCAL": str(stack_file)}, local.client_environment())
    worst = max(help_s, table_s)
    print(f"{'within' if worst < TARGET_S else 'OVER'} the target of {TARGET_S} s")
    print(f"cli_start_s={worst:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
