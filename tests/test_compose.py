"""docker-compose.yml, the Dockerfile and deploy/ agree with llmrel's settings, the collector configs
and Grafana's provisioning.

No Docker engine runs here, so the stack is checked statically: the files parse, every mounted
path exists, images are pinned, and names, ports and variables line up across files.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from llmrel.config import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
_COMPOSE_VAR = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")
_PINNED_TAG = re.compile(r"^[\w./-]+:\d+(\.\d+)*(-[\w.-]+)?$")


def _env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` with `env` (empty counts as unset)."""
    return _COMPOSE_VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) if "-" in m.group(0) else ""), value)


def _environment(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    values = _env_example() | (env or {})
    return {k: _interpolate(str(v), values) for k, v in SERVICES[service].get("environment", {}).items()}


def _bind_mounts(service: str) -> list[tuple[str, str]]:
    mounts = [v.split(":")[:2] for v in SERVICES[service].get("volumes", [])]
    return [(source, target) for source, target in mounts if source.startswith(".")]


def _port(endpoint: str) -> str:
    return endpoint.rpartition(":")[2]


def test_stack_has_its_services_and_named_volumes():
    assert set(SERVICES) == {"clickhouse", "llmrel", "collector", "grafana", "grafana-light"}
    assert SERVICES["grafana-light"]["profiles"] == ["light"]  # the full stack stays what `up` starts
    named = {v.split(":")[0] for s in SERVICES.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert named == set(COMPOSE["volumes"])


@pytest.mark.parametrize("service", ["clickhouse", "collector", "grafana"])
def test_images_are_pinned(service):
    image = SERVICES[service]["image"]
    assert _PINNED_TAG.match(image), f"{service}: pin a version, not {image!r}"


def test_dockerfile_base_images_are_pinned_and_copied_paths_exist():
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert bases and all(_PINNED_TAG.match(b) for b in bases), bases
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for source in sources.split():
            assert (ROOT / source).exists(), f"Dockerfile copies a missing path: {source}"
    assert SERVICES["llmrel"]["build"] == {"context": ".", "dockerfile": "Dockerfile"}


def test_every_mounted_path_exists():
    for service in SERVICES:
        for source, _ in _bind_mounts(service):
            assert (ROOT / source).exists(), f"{service} mounts a missing path: {source}"


def test_grafana_mounts_llmrel_provisioning_and_dashboards_where_the_provider_reads_them():
    mounts = dict(_bind_mounts("grafana"))
    for kind in ("datasources", "dashboards", "alerting"):
        assert mounts[f"./grafana/provisioning/{kind}"] == f"/etc/grafana/provisioning/{kind}"
    providers = [p for f in (ROOT / "grafana/provisioning/dashboards").glob("*.y*ml")
                 for p in yaml.safe_load(f.read_text())["providers"]]
    assert {p["options"]["path"] for p in providers} == {mounts["./grafana/dashboards"]}
    assert "grafana-clickhouse-datasource@" in SERVICES["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]


def test_grafana_provisioning_variables_are_all_set():
    used = {m for f in (ROOT / "grafana/provisioning").rglob("*.y*ml")
            for m in re.findall(r"\$\{?([A-Z][A-Z0-9_]*)\}?", f.read_text())}
    environment = _environment("grafana", {"CLICKHOUSE_PASSWORD": "pw", "GRAFANA_ADMIN_PASSWORD": "pw",
                                           "LLMREL_AUTH_TOKEN": "token", "CLICKHOUSE_GRAFANA_PASSWORD": "ro"})
    assert {v for v in used if not environment.get(v)} == set()
    assert environment["LLMREL_CH_HOST"] == "clickhouse"
    assert environment["LLMREL_CH_DATABASE"] == _environment("clickhouse")["CLICKHOUSE_DB"]


def test_llmrel_environment_names_are_settings():
    fields = {f"LLMREL_{name.upper()}" for name in Settings.model_fields}
    assert set(SERVICES["llmrel"]["environment"]) <= fields


def test_llmrel_settings_from_compose_are_valid_and_reach_clickhouse():
    environment = _environment("llmrel", {"CLICKHOUSE_PASSWORD": "pw", "LLMREL_AUTH_TOKEN": "token"})
    settings = Settings(**{k.removeprefix("LLMREL_").lower(): v for k, v in environment.items()})
    url = urlparse(settings.clickhouse_url)
    clickhouse = _environment("clickhouse", {"CLICKHOUSE_PASSWORD": "pw"})
    assert (url.hostname, url.port, url.username, url.password, url.path) == (
        "clickhouse", 8123, clickhouse["CLICKHOUSE_USER"], "pw", f"/{clickhouse['CLICKHOUSE_DB']}")
    assert settings.auth_token is not None


def test_llmrel_ports_and_health_check_match_its_endpoints():
    environment = SERVICES["llmrel"]["environment"]
    grpc_port, http_port = _port(environment["LLMREL_GRPC_ENDPOINT"]), _port(environment["LLMREL_HTTP_ENDPOINT"])
    assert SERVICES["llmrel"]["expose"] == [grpc_port]
    assert [p.rpartition(":")[2] for p in SERVICES["llmrel"]["ports"]] == [http_port]
    assert f"127.0.0.1:{http_port}/readyz" in " ".join(SERVICES["llmrel"]["healthcheck"]["test"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(rf"^EXPOSE {grpc_port} {http_port}$", dockerfile, re.MULTILINE)
    assert f"127.0.0.1:{http_port}/readyz" in dockerfile


def test_collector_runs_forward_yaml_pointed_at_llmrel():
    collector = SERVICES["collector"]
    mounts = dict(_bind_mounts("collector"))
    config_path = mounts["./collector-config/forward.yaml"]
    assert collector["command"] == [f"--config=file:{config_path}"]
    config = (ROOT / "collector-config/forward.yaml").read_text()
    used = {name for name, default in re.findall(r"\$\{env:(\w+)(:-[^}]*)?\}", config)}
    assert set(collector["environment"]) <= used, "the collector is given a variable its config does not read"
    llmrel = SERVICES["llmrel"]["environment"]
    assert collector["environment"]["LLMREL_OTLP_ENDPOINT"] == f"llmrel:{_port(llmrel['LLMREL_GRPC_ENDPOINT'])}"
    assert collector["environment"]["LLMREL_AUTH_TOKEN"] == llmrel["LLMREL_AUTH_TOKEN"]
    receiver = yaml.safe_load(config)["receivers"]["otlp"]["protocols"]
    listening = {_port(_interpolate(receiver[p]["endpoint"].replace("env:", ""), {})) for p in ("grpc", "http")}
    assert {p.rsplit(":", 2)[-1] for p in collector["ports"]} >= listening


@pytest.mark.parametrize("service", ["clickhouse", "llmrel", "grafana"])
def test_services_with_a_shell_have_health_checks(service):
    check = SERVICES[service]["healthcheck"]
    assert check["test"][0] == "CMD" and check["retries"] > 0


def test_no_secret_is_written_in_the_compose_file():
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET|KEY|WEBHOOK|_URL$", key):
                assert "${" in str(value), f"{name}.{key} must come from .env"
    secrets = re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text())
    assert set(secrets) == {"CLICKHOUSE_PASSWORD", "CLICKHOUSE_GRAFANA_PASSWORD", "LLMREL_AUTH_TOKEN",
                            "GRAFANA_ADMIN_PASSWORD"}
    assert all(_env_example()[s] == "" for s in secrets), ".env.example must not carry a secret"


def test_env_example_lists_every_variable_the_compose_file_reads():
    used = set(_COMPOSE_VAR.findall((ROOT / "docker-compose.yml").read_text()))
    assert {name for name, _ in used} == set(_env_example())
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_clickhouse_config_bounds_memory_and_system_log_retention():
    config = ET.parse(ROOT / "deploy/clickhouse/config.d/llmrel.xml").getroot()
    assert 0 < float(config.findtext("max_server_memory_usage_to_ram_ratio")) <= 0.9
    logs = [e for e in config if e.tag.endswith("_log")]
    assert {"query_log", "part_log", "metric_log", "asynchronous_metric_log", "trace_log"} <= {e.tag for e in logs}
    for log in logs:
        kept = log.findtext("ttl")
        assert log.get("remove") == "1" or re.fullmatch(r"event_date \+ INTERVAL \d+ DAY DELETE", kept or ""), log.tag
    users = ET.parse(ROOT / "deploy/clickhouse/users.d/llmrel.xml").getroot()
    assert int(users.findtext("profiles/default/max_memory_usage")) > 0
    assert SERVICES["clickhouse"]["mem_limit"]


def test_grafana_reads_clickhouse_as_a_read_only_user_of_llmrels_database():
    """Least privilege: dashboards never hold llmrel's read-write user (the collector holds none at all)."""
    users = ET.parse(ROOT / "deploy/clickhouse/users.d/llmrel.xml").getroot()
    grafana = users.find("users/grafana")
    assert grafana.find("password").get("from_env") == "CLICKHOUSE_GRAFANA_PASSWORD"
    assert users.findtext(f"profiles/{grafana.findtext('profile')}/readonly") in ("1", "2")
    assert grafana.find("allow_databases/database").get("from_env") == "CLICKHOUSE_DB"
    environment = _environment("grafana", {"CLICKHOUSE_PASSWORD": "pw", "GRAFANA_ADMIN_PASSWORD": "pw",
                                           "LLMREL_AUTH_TOKEN": "token", "CLICKHOUSE_GRAFANA_PASSWORD": "ro"})
    assert (environment["LLMREL_CH_USER"], environment["LLMREL_CH_PASSWORD"]) == ("grafana", "ro")
    assert "CLICKHOUSE_GRAFANA_PASSWORD" in _environment("clickhouse", {"CLICKHOUSE_PASSWORD": "pw",
                                                                        "CLICKHOUSE_GRAFANA_PASSWORD": "ro"})
    assert not {k for k in _environment("collector", {"LLMREL_AUTH_TOKEN": "t"}) if "CLICKHOUSE" in k}


def test_the_image_listens_everywhere_so_it_needs_a_token():
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    image_env = dict(re.findall(r"\b(LLMREL_\w+)=(\S+)", "\n".join(lines)))
    image = Settings(**{k.removeprefix("LLMREL_").lower(): v for k, v in image_env.items()})
    assert "LLMREL_AUTH_TOKEN" in image.unauthenticated_exposure(image.grpc_endpoint, image.http_endpoint)
    environment = _environment("llmrel", {"CLICKHOUSE_PASSWORD": "pw", "LLMREL_AUTH_TOKEN": "token"})
    composed = Settings(**{k.removeprefix("LLMREL_").lower(): v for k, v in environment.items()})
    assert composed.unauthenticated_exposure(composed.grpc_endpoint, composed.http_endpoint) is None


def test_light_grafana_reads_the_clickhouse_interface_as_the_reader():
    env = _environment("grafana-light", {"LLMREL_READER_PASSWORD": "pw"})
    default = Settings().clickhouse_http_endpoint
    assert (env["LLMREL_CH_HOST"], env["LLMREL_CH_PORT"]) == tuple(default.rsplit(":", 1))
    assert (env["LLMREL_CH_PROTOCOL"], env["LLMREL_CH_USER"], env["LLMREL_CH_PASSWORD"]) == ("http", "llmrel_reader",
                                                                                           "pw")
    assert _bind_mounts("grafana-light") == _bind_mounts("grafana")
    assert set(_environment("grafana")) == set(env) - {"GF_SERVER_HTTP_ADDR"}
