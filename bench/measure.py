"""What the benchmarks measure of a running process (imported by the scripts beside it).

`serve` runs gunicorn: the pid a script started is the master, which serves nothing; the workers
it forked hold the state. So memory is always summed over the whole process tree.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def children_of() -> dict[int, list[int]]:
    """Every process's children, from /proc/PID/stat (the parent is the field after the name)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def process_tree(root: int) -> list[int]:
    tree, found = children_of(), [root]
    for pid in found:  # grows while walked: breadth first
        found.extend(tree.get(pid, []))
    return found


def kib(pid: int, file: str, field: str) -> int:
    """A `field:` line of /proc/PID/`file` in KiB (0 when the process is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` and all its descendants, summed, in MiB."""
    return sum(kib(one, "status", "VmRSS:") for one in process_tree(pid)) / 1024


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of `pid` and its descendants, summed, in MiB: each process's
    own peak, so an upper bound of the tree's."""
    return sum(kib(one, "status", "VmHWM:") for one in process_tree(pid)) / 1024
