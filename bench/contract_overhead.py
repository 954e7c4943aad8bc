"""The contract kit's own overhead per example, against the Python reference client.

    python bench/contract_overhead.py [--examples 25] [--seed 1]

Per example: wall time of the whole example minus the client process's own (wall) time, i.e.
what the kit spends resetting the emulator, scripting it, writing the customers file, reading the
journal and sharings back and running the checks. Target (issue 4): median <= 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.client_suite import run_client_suite  # noqa: E402
from contracts.runner import CommandClient, EmulatorProcess  # noqa: E402

REFERENCE = f"{sys.executable} {ROOT / 'fixtures/clients/python/reference_client.py'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=25, help="examples in all (25)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with EmulatorProcess.start() as emulator:
        explicit = 10  # one (two for the throttle) per scenario, always played first
        result = run_client_suite(
            emulator.target,
            CommandClient(REFERENCE),
            max_examples=max(args.examples - explicit, 1),
            seed_value=args.seed,
            progress=None,
        )
    played = result.played[: args.examples]
    overhead = sorted(p.kit_seconds for p in played)
    client = sorted(p.observation.client_seconds for p in played)
    median_overhead, median_client = statistics.median(overhead), statistics.median(client)
    p90 = overhead[int(len(overhead) * 0.9)]
    row = "{:>8} {:>12} {:>10} {:>10} {:>16} {:>10}"
    print(
        row.format(
            "examples", "kit median s", "kit p90 s", "kit max s", "client median s", "kit/client"
        )
    )
    figures = (
        f"{median_overhead:.3f}",
        f"{p90:.3f}",
        f"{overhead[-1]:.3f}",
        f"{median_client:.3f}",
    )
    print(row.format(len(played), *figures, f"{median_overhead / median_client:.1%}"))
    by_scenario: dict[str, list[float]] = {}
    for p in played:
        by_scenario.setdefault(p.example.scenario, []).append(p.kit_seconds)
    for scenario, seconds in sorted(by_scenario.items()):
        median = statistics.median(seconds)
        print(f"  {scenario:<18} {len(seconds):>3} examples, kit median {median:.3f} s")
    print("all checks held" if result.passed else f"FAILED: {sorted(result.failed_checks)}")


if __name__ == "__main__":
    main()
