"""Soak run of the contract kit: both reference clients, many examples, several seeds (not in CI).

    python bench/contract_soak.py [--examples 1000] [--seeds 1 2 3] [--clients python node]

Each (client, seed) is one `pisano-mock contract client` run through the CLI, as a user runs it.
Prints a table: client, seed, examples played, result (the checks that failed, or "pass"), wall
time. A correct client must pass every run: a failure here is a false alarm of the kit (or a bug
of the reference client), and the run's report is kept in the log directory to show which.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = {
    "python": f"{sys.executable} {ROOT / 'fixtures/clients/python/reference_client.py'}",
    "node": f"node {ROOT / 'fixtures/clients/node/reference_client.mjs'}",
}
PLAYED = re.compile(r"(\d+) examples played")


def soak(client: str, seed: int, examples: int, logs: Path) -> tuple[int, str, float]:
    """One run: (examples played, result, wall seconds); its report and progress go to logs."""
    command = [
        *(sys.executable, "-m", "mockserver.cli", "contract", "client"),
        *("--client-cmd", CLIENTS[client], "--max-examples", str(examples), "--seed", str(seed)),
    ]
    began = time.perf_counter()
    with (logs / f"{client}-{seed}.progress").open("w") as progress:
        run = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=progress, text=True)
    seconds = time.perf_counter() - began
    (logs / f"{client}-{seed}.report").write_text(run.stdout)
    played = PLAYED.search(run.stdout)
    failed = [
        line.split("FAIL", 1)[1].strip() for line in run.stdout.splitlines() if "  FAIL  " in line
    ]
    result = {0: "pass", 1: "FAIL: " + "; ".join(failed)}.get(
        run.returncode, f"kit error {run.returncode}"
    )
    return int(played.group(1)) if played else 0, result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="--max-examples per run (1000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--clients", nargs="+", choices=sorted(CLIENTS), default=list(CLIENTS))
    parser.add_argument("--logs", type=Path, default=Path("/tmp/pisano-contract-soak"))
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    print(f"{'client':8} {'seed':>5} {'examples':>9}  {'wall s':>8}  result", flush=True)
    for seed in args.seeds:
        for client in args.clients:
            played, result, seconds = soak(client, seed, args.examples, args.logs)
            print(f"{client:8} {seed:5} {played:9}  {seconds:8.0f}  {result}", flush=True)


if __name__ == "__main__":
    main()
