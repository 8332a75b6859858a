"""The deployment files stay valid: no Docker engine runs here, so they are checked by reading.

Every service built from the app image runs an ``opendpia`` subcommand that the command line
really has (read from its parser, so a renamed or removed command fails here), with only
settings that exist; the infrastructure has health checks; the proxy reaches every web
process and the web processes share one bus; the proxy serves HTTPS with HSTS, redirects
plain HTTP there, and the web processes believe its forwarded headers. Where Debian's
``caddy`` is installed (``make test`` installs it), Caddy itself checks the Caddyfile too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.cli import build_parser
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
ONE_YEAR = 365 * 24 * 3600
DOMAIN = "{$OPENDPIA_DOMAIN:localhost}"  # the site address, from the environment


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
    caddyfile = CADDYFILE.read_text()
    proxies = re.findall(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert len(proxies) == 2, "the collaboration sockets, and everything else"
    for upstreams in proxies:
        hosts = [u.split(":")[0] for u in upstreams.split() if not u.startswith("@")]
        assert sorted(hosts) == sorted(web)
    assert "health_uri /readyz" in caddyfile
    mounted = _services()["proxy"]["volumes"][0].split(":")[0]
    assert (ROOT / mounted).resolve() == CADDYFILE.resolve()


def test_the_dockerfile_installs_the_app_and_the_editor_bundle() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "npm ci" in dockerfile and "frontend/dist" in dockerfile
    assert re.search(r"^CMD \[\"opendpia\", \"serve\"\]$", dockerfile, re.M)
    for copied in re.findall(r"^COPY (?!--from)(\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), f"the Dockerfile copies {copied}, which is missing"


def _sites() -> dict[str, str]:
    """The Caddyfile's site blocks: address -> body (global options and snippets aside)."""
    text = re.sub(r"(?m)^\s*#.*$", "", CADDYFILE.read_text())
    sites: dict[str, str] = {}
    for found in re.finditer(r"(?m)^(\S+) \{$", text):
        depth, at = 1, found.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[at], 0)
            at += 1
        sites[found.group(1)] = text[found.end() : at - 1]
    return sites


def _hsts_max_age(value: str) -> int:
    found = re.fullmatch(r"max-age=(\d+)(; ?includeSubDomains)?(; ?preload)?", value)
    assert found, f"not a Strict-Transport-Security value: {value!r}"
    return int(found.group(1))


def test_the_proxy_serves_the_domain_over_https_with_hsts_and_proxies_only_there() -> None:
    sites = _sites()
    assert set(sites) == {f"http://{DOMAIN}", f"https://{DOMAIN}"}
    secure = sites[f"https://{DOMAIN}"]
    assert "reverse_proxy" in secure
    header = re.search(r'Strict-Transport-Security "([^"]+)"', secure)
    assert header is not None, "the HTTPS site sends no Strict-Transport-Security header"
    assert _hsts_max_age(header.group(1)) >= ONE_YEAR
    assert "tls " not in secure  # Caddy's automatic HTTPS picks the issuer (local CA for localhost)


def test_plain_http_only_redirects_permanently_to_https() -> None:
    plain = _sites()[f"http://{DOMAIN}"].split()
    assert plain == ["redir", "https://{host}{uri}", "permanent"]


def test_the_compose_file_publishes_https_keeps_certificates_and_tells_the_app() -> None:
    services = _services()
    proxy = services["proxy"]
    published = {str(port).split(" ")[0] for port in proxy["ports"]}
    assert {"80:80", "443:443"} <= published
    assert proxy["environment"]["OPENDPIA_DOMAIN"] == "${OPENDPIA_DOMAIN:-localhost}"
    data = [v for v in proxy["volumes"] if v.split(":")[1] == "/data"]
    assert data and data[0].split(":")[0] in _compose()["volumes"]  # a named volume: kept
    for name, service in _app_services().items():
        env = service["environment"]
        assert env["OPENDPIA_BASE_URL"] == "https://${OPENDPIA_DOMAIN:-localhost}", name
        if service["command"][1] == "serve":
            assert env["OPENDPIA_FORWARDED_ALLOW_IPS"] == "*", name
            assert "ports" not in service, f"{name} must be reachable only through the proxy"
            assert env["OPENDPIA_ENV"] == "production"  # Secure cookies


def _caddy(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    caddy = shutil.which("caddy")
    if caddy is None:
        if os.environ.get("CI") == "true":
            pytest.fail("caddy is not installed (required in CI): run `make test`")
        pytest.skip("caddy is not installed: `apt-get install caddy` (make test does)")
    # Caddy keeps its local CA and state under these: a temporary directory, not $HOME.
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "OPENDPIA_DOMAIN": "dpia.example.org",
    }
    return subprocess.run(
        [caddy, *args, "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_caddy_accepts_the_caddyfile(tmp_path: Path) -> None:
    done = _caddy("validate", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout + done.stderr


def test_caddy_reads_the_https_site_the_redirect_and_hsts_as_intended(tmp_path: Path) -> None:
    done = _caddy("adapt", home=tmp_path)
    assert done.returncode == 0, done.stderr
    servers = json.loads(done.stdout)["apps"]["http"]["servers"].values()
    by_port = {tuple(server["listen"]): server["routes"] for server in servers}
    assert set(by_port) == {(":443",), (":80",)}
    for routes in by_port.values():  # both for the domain from the environment
        assert [route["match"] for route in routes] == [[{"host": ["dpia.example.org"]}]]

    def handlers(routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [h for r in routes for s in r["handle"] for rr in s["routes"] for h in rr["handle"]]

    secure = handlers(by_port[(":443",)])
    assert [h["handler"] for h in secure] == [
        "headers",
        "headers",
        "reverse_proxy",
        "reverse_proxy",
    ]
    [hsts] = secure[0]["response"]["set"]["Strict-Transport-Security"]
    assert _hsts_max_age(hsts) >= ONE_YEAR
    # Every connection to one document goes to one process: the hash of its id, taken
    # from the path into a header; everything else to the least busy process.
    [collaboration] = [
        rr for r in by_port[(":443",)] for s in r["handle"] for rr in s["routes"] if "match" in rr
    ]
    [matcher] = collaboration["match"]
    pattern = re.compile(matcher["path_regexp"]["pattern"])
    found = pattern.match("/ws/dpia/dpia-123")
    assert found is not None and found.group(1) == "dpia-123"
    assert pattern.match("/dpias/dpia-123") is None and pattern.match("/ws/dpia/a/b") is None
    name = matcher["path_regexp"]["name"]
    [(field, [value])] = secure[1]["request"]["set"].items()
    assert value == f"{{http.regexp.{name}.1}}"
    policy = secure[2]["load_balancing"]["selection_policy"]
    assert policy["policy"] == "header" and policy["field"].lower() == field.lower()
    assert secure[3]["load_balancing"]["selection_policy"]["policy"] == "least_conn"
    for proxy in secure[2:]:
        assert {u["dial"] for u in proxy["upstreams"]} == {"web1:8000", "web2:8000"}
        assert proxy["health_checks"]["active"]["uri"] == "/readyz"
    [redirect] = handlers(by_port[(":80",)])
    assert redirect["handler"] == "static_response" and redirect["status_code"] in (301, 308)
    assert redirect["headers"]["Location"] == ["https://{http.request.host}{http.request.uri}"]
