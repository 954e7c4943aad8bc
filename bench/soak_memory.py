"""Resident memory of `pisano-mock serve` over many requests, once its bounded store is full.

    python bench/soak_memory.py [--requests 40000]

The emulator runs with small bounds (1000 journal entries, 1000 sharings) so that they are reached
early; after that, resident memory must stay flat. Every seventh request is refused (13028), so
error paths are soaked too. The last column is the growth against the first reading taken after
the bounds were reached, in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import rss_mib  # bench/measure.py: these scripts run from bench/

ROOT = Path(__file__).resolve().parents[1]
PATH = "/v1/email_campaigns/735c19a7-ee54-4b03-a84a-93dfe2a94a56/email_sharings"
HEADERS = {"Authorization": "Token token=test-token", "Content-Type": "application/json"}


def small_bounds_config() -> Path:
    text = (ROOT / "fixtures" / "default.toml").read_text(encoding="utf-8")
    text = text.replace("journal_max_entries = 10000", "journal_max_entries = 1000")
    text = text.replace("sharings_max_recipients = 1000000", "sharings_max_recipients = 1000")
    config = Path(tempfile.mkdtemp()) / "small-bounds.toml"
    config.write_text(text, encoding="utf-8")
    return config


def body(index: int) -> str:
    if index % 7 == 0:
        return '{"emails": [1]}'
    emails = [f"a{index}@example.com", f"b{index}@example.com"]
    return json.dumps({"emails": emails, "custom_attributes": {emails[0]: {"name": "x" * 50}}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40_000)
    args = parser.parse_args()
    command = [sys.executable, "-m", "mockserver.cli", "serve", "--port", "0", "--no-throttle"]
    command.append("--quiet")  # no access-log line per request: 40 000 of them would be noise
    process = subprocess.Popen(
        [*command, "--config", str(small_bounds_config())], stdout=subprocess.PIPE, text=True
    )
    try:
        host, port = (process.stdout.readline().split()[2] if process.stdout else "")[7:].split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        step = max(args.requests // 4, 1)
        baseline = None
        print(f"{'requests':>9} {'RSS MiB':>8} {'vs at bound':>12}")
        for index in range(1, args.requests + 1):
            connection.request("POST", PATH, body=body(index), headers=HEADERS)
            connection.getresponse().read()
            if index % step == 0:
                rss = rss_mib(process.pid)
                baseline = baseline or rss
                print(f"{index:>9} {rss:>8.1f} {rss / baseline:>11.0%}")
    finally:
        process.terminate()
        process.wait()


if __name__ == "__main__":
    main()
