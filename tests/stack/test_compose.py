"""compose/: the services, health checks and dependencies are there, and no secret is written inline."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

COMPOSE = REPO / "compose" / "docker-compose.yml"
SECRET_KEYS = re.compile(r"PASSWORD|SECRET|ACCESS_KEY")


def test_services_health_checks_and_dependencies():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"seaweedfs", "create-bucket", "postgres", "mlflow", "grafana"}
    for name in ("seaweedfs", "postgres", "mlflow", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    assert services["mlflow"]["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                                "create-bucket": {"condition": "service_completed_successfully"}}
    assert services["create-bucket"]["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    assert "postgres:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    start = (REPO / "compose" / "mlflow" / "start.sh").read_text()
    assert "--serve-artifacts" in start and "--app-name basic-auth" in start and "s3://${MLFLOW_BUCKET}" in start


def test_no_secret_inline():
    spec = yaml.safe_load(COMPOSE.read_text())
    for name, service in spec["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_KEYS.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), f"{name}.{key} is set inline"
    example = (REPO / "compose" / ".env.example").read_text()
    assert all(line.endswith(("change-me", "change-me-at-least-12-chars")) for line in example.splitlines()
               if SECRET_KEYS.search(line.split("=")[0]) and not line.startswith("#"))
    datasource = (REPO / "compose" / "grafana" / "provisioning" / "datasources" / "mlflow.yaml").read_text()
    assert "password: $GRAFANA_DB_PASSWORD" in datasource and "user: grafana_ro" in datasource
