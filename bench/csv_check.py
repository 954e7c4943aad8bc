"""`pisano-mock csv check` on growing files: seconds and peak resident memory (issue 11).

    python bench/csv_check.py [--rows 10000,100000,1000000] [--channel email]

Each size is a generated file of that many recipients (email, name, two custom attributes; one
row in 1000 repeats an address, so the exact look at duplicates runs), checked in a fresh Python
process (`check_csv`, as the CLI runs it); the child reports its wall time and its peak RSS
(`ru_maxrss`). The last columns give both against the smallest size, measured in the same run:
time should grow with the rows, memory should not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
from mockserver.csvfile import check_csv, file_source
started = time.perf_counter()
summary = check_csv(file_source(sys.argv[1]), sys.argv[2])
seconds = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024, "rows": summary.rows,
                  "problems": [p.text() for p in summary.problems]}))
"""


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email;name;Segment;Location\r\n")
        for row in range(rows):
            number = row - 1 if row % 1000 == 999 else row  # a duplicate every 1000 rows
            out.write(f"customer{number}@example.com;Müşteri {row};gold;İstanbul\r\n")


def measure(path: Path, channel: str) -> dict[str, object]:
    command = [sys.executable, "-c", CHILD, str(path), channel]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000", help="comma-separated sizes")
    parser.add_argument("--channel", default="email", choices=("email", "sms"))
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    print(
        f"{'rows':>9} {'MiB file':>9} {'seconds':>8} {'peak RSS MiB':>13} {'time x':>7} "
        f"{'RSS x':>6}  problems"
    )
    baseline: dict[str, object] | None = None
    with tempfile.TemporaryDirectory() as folder:
        for rows in sizes:
            path = Path(folder) / f"{rows}.csv"
            write_file(path, rows)
            figures = measure(path, args.channel)
            baseline = baseline or figures
            print(
                f"{rows:>9} {path.stat().st_size / 2**20:>9.1f} {figures['seconds']:>8.2f} "
                f"{figures['peak_mib']:>13.1f} "
                f"{figures['seconds'] / baseline['seconds']:>7.1f} "  # type: ignore[operator]
                f"{figures['peak_mib'] / baseline['peak_mib']:>6.2f}  "  # type: ignore[operator]
                f"{len(figures['problems'])}",  # type: ignore[arg-type]
                flush=True,
            )
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
