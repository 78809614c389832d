"""compose.yaml (Docker is not on the CI machine): its services, the settings they pass and the ``kb serve``
commands they run must be ones this code accepts, and its proxy must reach both replicas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from kb.server.cli import cli
from kb.settings import ServeRole, Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return compose


def test_compose_runs_postgres_chroma_a_writer_two_replicas_and_a_proxy() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "chroma", "writer", "api1", "api2", "proxy"}
    roles = {}
    for name in ("writer", "api1", "api2"):
        service = services[name]
        command = service["command"]
        assert command[:2] == ["kb", "serve"]
        # The options parse as `kb serve` declares them, and every KB_ variable is a setting kb reads.
        context = cli.commands["serve"].make_context("serve", list(command[2:]))
        roles[name] = ServeRole(context.params["role"])
        env = service["environment"]
        assert {"KB_LEDGER_URL", "KB_CHROMA_URL"} <= set(env)
        assert all(key.removeprefix("KB_").lower() in Settings.model_fields for key in env), env
        assert env["KB_LEDGER_URL"].startswith("postgresql://") and "@postgres:" in env["KB_LEDGER_URL"]
        assert env["KB_CHROMA_URL"] == "http://chroma:8000"
        assert service["build"] == "."
    assert roles == {"writer": ServeRole.writer, "api1": ServeRole.api, "api2": ServeRole.api}
    assert "/policies" in services["writer"]["command"] and "volumes" in services["writer"]
    assert services["proxy"]["image"].startswith("nginx:") and services["proxy"]["ports"] == ["8000:80"]


def test_the_proxy_balances_the_replicas_and_sends_edits_to_the_writer() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    replicas = re.search(r"upstream replicas \{(.*?)\}", conf, re.S)
    assert replicas is not None and re.findall(r"server (\w+):8000", replicas.group(1)) == ["api1", "api2"]
    assert "proxy_pass http://writer" in conf and "review|acknowledge" in conf


def test_the_image_installs_the_cpu_torch_before_the_project() -> None:
    steps = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("RUN")]
    assert "torch==" in steps[0] and "download.pytorch.org/whl/cpu" in steps[0]
    assert "pip install ." in steps[1]
