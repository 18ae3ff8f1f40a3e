"""Rendering of the Kubernetes overlays (deploy/k8s/overlays/*) with the real kustomize.

``kubectl kustomize`` renders them (kustomize built into kubectl), or ``kustomize build`` where
only the standalone binary is installed (.ci/run installs that from the Go module proxy when
neither is present). A machine with neither skips the tests that need a rendering, unless
CASCADE_REQUIRE_KUBECTL=1 (set by .ci/run) makes that a failure, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.checks import K8S, Render


def kustomize_command() -> list[str] | None:
    """The command that renders a kustomization directory given as its last argument."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


@pytest.fixture(scope="session")
def render() -> Render:
    """Render an overlay by name; each overlay is rendered once per session."""
    cmd = kustomize_command()
    if cmd is None:
        reason = "neither kubectl nor kustomize is installed (.ci/run installs kustomize)"
        if os.environ.get("CASCADE_REQUIRE_KUBECTL") == "1":
            pytest.fail(f"CASCADE_REQUIRE_KUBECTL=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    cache: dict[str, list[dict[str, Any]]] = {}

    def _render(overlay: str) -> list[dict[str, Any]]:
        if overlay not in cache:
            res = subprocess.run(
                [*cmd, str(K8S / "overlays" / overlay)],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            assert res.returncode == 0, f"{' '.join(cmd)} {overlay}:\n{res.stderr}"
            cache[overlay] = [d for d in yaml.safe_load_all(res.stdout) if d is not None]
        return cache[overlay]

    return _render
