"""The deployment files stay valid: no Docker engine runs here, so they are checked by reading.

Every service built from the app image runs an ``opendpia`` subcommand that the command line
really has (read from its parser, so a renamed or removed command fails here), with only
settings that exist; the infrastructure has health checks; the proxy reaches every web
process and the web processes share one bus.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.cli import build_parser
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _app_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if s.get("image") == "opendpia:latest"}


def _subcommands() -> set[str]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the opendpia parser has no subcommands")


@pytest.mark.parametrize("name", sorted(_app_services()))
def test_each_app_service_runs_an_existing_opendpia_command(name: str) -> None:
    service = _app_services()[name]
    command = service["command"]
    assert isinstance(command, list) and command[0] == "opendpia", command
    assert command[1] in _subcommands(), f"{name}: `opendpia {command[1]}` does not exist"
    build_parser().parse_args(command[1:])  # its options parse too (exits on error)
    unknown = {k for k in service["environment"] if k.startswith("OPENDPIA_")} - set(
        Settings.env_names()
    )
    assert not unknown, f"{name} sets unknown settings {unknown}"


def test_the_deployment_has_every_part_the_issue_names() -> None:
    services = _services()
    app = _app_services()
    commands = [s["command"][1] for s in app.values()]
    assert commands.count("serve") >= 2
    assert {"migrate", "worker", "bridge"} <= set(commands)
    for infrastructure in ("postgres", "redis"):
        assert "test" in services[infrastructure]["healthcheck"]
    assert "mailpit" in services["mailpit"]["image"]
    # Migrations run once, before anything that uses the database starts.
    for name, service in app.items():
        if name != "migrate":
            condition = service["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"


def test_the_web_processes_share_postgresql_and_redis_and_sit_behind_the_proxy() -> None:
    app = _app_services()
    web = [name for name, s in app.items() if s["command"][1] == "serve"]
    for name in web:
        env = app[name]["environment"]
        assert env["OPENDPIA_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["OPENDPIA_REDIS_URL"].startswith("redis://")
        Settings.from_env({**env, "OPENDPIA_SECRET_KEY": "x" * 48})  # a valid configuration
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    assert sorted(u.split(":")[0] for u in upstreams.group(1).split()) == sorted(web)
    assert "health_uri /readyz" in caddyfile
    mounted = _services()["proxy"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == (ROOT / "deploy" / "Caddyfile").resolve()


def test_the_dockerfile_installs_the_app_and_the_editor_bundle() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm ci" in dockerfile and "frontend/dist" in dockerfile
    assert re.search(r"^CMD \[\"opendpia\", \"serve\"\]$", dockerfile, re.M)
    for copied in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), f"the Dockerfile copies {copied}, which is missing"
