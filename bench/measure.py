"""What the benchmarks measure of a running process (imported by the scripts beside it)."""

from __future__ import annotations

from pathlib import Path


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` in MiB (Linux /proc), or NaN when it cannot be read."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
