"""The shipped collector configs against the distribution built from `builder-config.yaml`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.collector.collector_harness import CONFIG_DIR, clean_env

PIPELINE_CONFIGS = sorted(p.name for p in CONFIG_DIR.glob("*.yaml") if p.name != "builder-config.yaml")
_ENV_REF = re.compile(r"\$\{env:(\w+)(:-[^}]*)?\}")
_KINDS = ("receivers", "processors", "exporters", "extensions", "connectors")


def _load(name: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / name).read_text())


def _required_env(name: str) -> set[str]:
    """Placeholders without a default: the collector cannot start without them."""
    return {var for var, default in _ENV_REF.findall((CONFIG_DIR / name).read_text()) if not default}


def test_every_expected_config_is_shipped():
    assert PIPELINE_CONFIGS == ["clickhouse-direct.yaml", "forward.yaml", "tail-sampling.yaml"]


@pytest.mark.parametrize("config", PIPELINE_CONFIGS)
def test_configs_name_no_host_or_secret(config):
    code = "\n".join(line.split("#", 1)[0] for line in (CONFIG_DIR / config).read_text().splitlines())
    assert set(re.findall(r"\b(?:\d{1,3}\.){3}\d{1,3}\b", code)) <= {"0.0.0.0"}, "hard-coded address"
    for key in ("password", "authorization", "endpoint"):
        for value in re.findall(rf"^\s*{key}:\s*(.+)$", code, re.MULTILINE):
            assert "${env:" in value, f"{key} must come from the environment: {value}"


def test_manifest_pins_one_collector_release():
    manifest = yaml.safe_load((CONFIG_DIR / "builder-config.yaml").read_text())
    versions: dict[str, set[str]] = {}
    for kind in ("providers", *_KINDS):
        for entry in manifest.get(kind) or []:
            path, version = entry["gomod"].split()
            family = "contrib" if "/opentelemetry-collector-contrib/" in path else "core"
            versions.setdefault(family, set()).add(version)
    # Core modules come in pairs per release: v0.161.0 and its stable modules at v1.67.0.
    assert versions == {"core": {"v0.161.0", "v1.67.0"}, "contrib": {"v0.161.0"}}
    assert manifest["dist"]["version"] == "0.161.0"


@pytest.mark.collector
@pytest.mark.parametrize("config", PIPELINE_CONFIGS)
def test_validate(otelcol: Path, config):
    env = clean_env(**{var: "tcp://127.0.0.1:9000" for var in _required_env(config)})
    done = subprocess.run([str(otelcol), "validate", f"--config=file:{CONFIG_DIR / config}"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.collector
def test_validate_rejects_a_missing_clickhouse_endpoint(otelcol: Path):
    assert _required_env("clickhouse-direct.yaml") == {"CLICKHOUSE_ENDPOINT"}
    done = subprocess.run([str(otelcol), "validate", f"--config=file:{CONFIG_DIR / 'clickhouse-direct.yaml'}"],
                          env=clean_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "endpoint must be specified" in done.stderr


@pytest.mark.collector
def test_distribution_has_exactly_the_components_the_configs_use(otelcol: Path):
    used: dict[str, set[str]] = {kind: set() for kind in _KINDS}
    for config in PIPELINE_CONFIGS:
        for kind in _KINDS:
            used[kind] |= {component_id.split("/")[0] for component_id in _load(config).get(kind) or {}}
    done = subprocess.run([str(otelcol), "components"], capture_output=True, text=True, timeout=60, check=True)
    built = yaml.safe_load(done.stdout)
    assert {kind: {c["name"] for c in built.get(kind) or []} for kind in _KINDS} == used
