"""Fixtures of the deployment tests: helm, and the chart rendered once per values file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.gen_chart import camel
from tests.deploy.helm import Helm
from venus_grpc.settings import Settings

HERE = Path(__file__).resolve().parent
# Non-default where the default would not show a formatting mistake (an exponent, a missing comma).
CONFIG_SAMPLES: dict[str, Any] = {"shutdownGraceS": 45.5, "workers": 3, "maxMessageBytes": 8 * 1024 * 1024,
                                  "kafkaBootstrap": "kafka-0.kafka:9093,kafka-1.kafka:9093",
                                  "logLevel": "WARNING", "quotaAppOverrides": ["big-app=5000/2000000", "internal=0"],
                                  "healthPort": 8086, "httpEnabled": True, "httpPort": 8443,
                                  "httpCorsOrigins": ["https://app.example.com"]}


def config_sample(f: dataclasses.Field[Any]) -> Any:
    """A value for setting ``f`` as a user writes it in values.yaml."""
    if camel(f.name) in CONFIG_SAMPLES:
        return CONFIG_SAMPLES[camel(f.name)]
    if isinstance(f.default, tuple):
        return ["10.0.0.0/8", "fd00::/8"]
    if isinstance(f.default, frozenset):
        return ["PERF_CRASH", "CUSTOM"]
    return f.default


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The real helm binary, with a home of its own."""
    return Helm(tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def full_values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """values-full.yaml plus every setting under config: every option of the chart on."""
    values = yaml.safe_load((HERE / "values-full.yaml").read_text())
    values["config"] = {camel(f.name): config_sample(f) for f in dataclasses.fields(Settings)}
    path = tmp_path_factory.mktemp("values") / "values-full.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="session")
def default_manifests(helm: Helm) -> list[dict[str, Any]]:
    """The chart rendered with its default values."""
    return helm.render()


@pytest.fixture(scope="session")
def full_manifests(helm: Helm, full_values: Path) -> list[dict[str, Any]]:
    """The chart rendered with every option on."""
    return helm.render(full_values)
