"""`contract server --live --drift DIR`: the live suite sent through `pisano-mock proxy`, which
forwards each request to the real environment unchanged, holds the emulator's answer to it against
the environment's and records both in DIR (SPEC 2.8). The kit reaches the proxy as a process and
over HTTP only, as it reaches the emulator.

The shadow emulator needs the user's token and campaign to answer as Pisano would (else every
request is 13001 on the emulator's side): the kit writes that config for them — the token of an
active account owning the campaign, with a flow, and the SMS campaign and link channel when given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .model import KitError

ACCOUNT = "live"  # the shadow's one account: the environment's account, whatever its name
RECORDING = "pairs.jsonl"  # what `pisano-mock proxy --record DIR` writes


def _toml_string(text: str) -> str:
    # A JSON string is a TOML basic string: quotes, backslashes and control characters escaped.
    return json.dumps(text)


def shadow_config(
    token: str,
    campaign_id: str,
    sms_campaign_id: str | None = None,
    link_channel_id: str | None = None,
) -> str:
    """The config (TOML) a user would otherwise write by hand for the shadow emulator: its
    entities replace the default fixture's, its settings (throttle, ...) stay Pisano's."""
    lines = [f"[accounts.{ACCOUNT}]", "locked = false", ""]
    lines += [f"[tokens.{_toml_string(token)}]", f'account = "{ACCOUNT}"', "active = true", ""]
    lines += _campaign(campaign_id, "email")
    if sms_campaign_id is not None:
        lines += _campaign(sms_campaign_id, "sms")
    if link_channel_id is not None:
        lines += [f"[link_channels.{_toml_string(link_channel_id)}]", f'account = "{ACCOUNT}"', ""]
    return "\n".join(lines)


def _campaign(campaign_id: str, channel: str) -> list[str]:
    return [
        f"[campaigns.{_toml_string(campaign_id)}]",
        f'account = "{ACCOUNT}"',
        f'channel = "{channel}"',
        "flow = true",
        "",
    ]


def drift_dir_problem(directory: str) -> str | None:
    """Why `--drift DIR` cannot take a new recording, or None (checked before anything runs)."""
    path = Path(directory)
    if path.exists() and not path.is_dir():
        return f"--drift: {directory} is not a directory"
    if (path / RECORDING).exists() and (path / RECORDING).stat().st_size:
        return f"--drift: {directory} already holds a recording; give a new or empty directory"
    parent = path if path.exists() else path.resolve().parent
    if not os.access(parent, os.W_OK):
        return f"--drift: cannot write in {parent}"
    return None


@dataclass
class ProxyProcess:
    """`pisano-mock proxy --upstream URL --record DIR --port 0` in a child process."""

    process: subprocess.Popen[str]
    base_url: str

    def stop(self) -> None:
        """SIGTERM: the proxy answers what is in flight, flushes its recording, exits."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mockserver.cli", *args]


@contextmanager
def proxy_to(upstream: str, record: str, config_text: str) -> Iterator[ProxyProcess]:
    """A proxy to `upstream` recording in `record`, its shadow configured by `config_text` (held
    in a private temporary file: it names the user's token), stopped on leaving."""
    with tempfile.TemporaryDirectory(prefix="pisano-mock-drift-") as scratch:
        config = Path(scratch) / "shadow.toml"
        config.write_text(config_text)
        config.chmod(0o600)
        errors = Path(scratch) / "proxy.err"
        proxy = _start(upstream, record, config, errors)
        try:
            yield proxy
        finally:
            proxy.stop()


def _start(upstream: str, record: str, config: Path, errors: Path) -> ProxyProcess:
    command = _python_command(
        *("proxy", "--upstream", upstream, "--record", record, "--port", "0"),
        *("--config", str(config), "--quiet"),
    )
    with errors.open("w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = process.stdout.readline() if process.stdout else ""
    words = line.split()
    if not line.startswith("pisano-mock proxy http") or len(words) < 3:
        process.kill()
        process.wait()
        said = errors.read_text(errors="replace").strip().splitlines()
        raise KitError(f"the drift proxy did not start: {said[-1] if said else repr(line)}")
    # Whatever else it prints is read and dropped: a full pipe would stall it mid-answer.
    threading.Thread(target=process.stdout.read, daemon=True).start()  # type: ignore[union-attr]
    return ProxyProcess(process, words[2])


def drift_summary(record: str) -> tuple[int, str]:
    """`pisano-mock drift report DIR`: its exit status (0 every pair the same, 1 differences,
    2 no readable recording) and what it printed."""
    report = subprocess.run(
        _python_command("drift", "report", record),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    return report.returncode, (report.stdout + report.stderr).strip()
