"""Installable everywhere: a built wheel and sdist install in a fresh virtualenv and run; without
the embedded broker (platforms with no noida-db wheel) the demo says how to use Kafka instead."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_without_the_embedded_broker_demo_and_run_say_how_to_point_at_kafka(
    tmp_path: Path,
) -> None:
    hide = "import sys; sys.modules['noida_db'] = None; from monitor.app.cli import main; "
    for command in ("demo", "run"):
        res = subprocess.run(
            [sys.executable, "-c", hide + f"sys.exit(main(['{command}']))"],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "XDG_STATE_HOME": str(tmp_path),
                 "CASCADE_MONITOR__BROKER__PORT": "1"},
        )  # fmt: skip
        assert res.returncode == 2, (command, res.stdout, res.stderr)
        assert "embedded broker (noida-db) is not installed" in res.stderr
        assert "CASCADE_MONITOR__KAFKA__BOOTSTRAP_SERVERS" in res.stderr


@pytest.mark.slow
def test_a_built_wheel_and_sdist_install_and_run(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(dist), str(ROOT)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    for artifact in (wheels[0], sdists[0]):
        env_dir = tmp_path / f"venv-{artifact.suffix}"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        pip, cli = env_dir / "bin" / "pip", env_dir / "bin" / "cascade-monitor"
        subprocess.run([str(pip), "install", "-q", str(artifact)], check=True, timeout=900)
        res = subprocess.run([str(cli), "--help"], capture_output=True, text=True, check=False)
        assert res.returncode == 0 and "usage: cascade-monitor" in res.stdout, res.stderr
        # the packaged venues and the template are in the wheel: every command knows them
        res = subprocess.run([str(cli), "simulate", "--help"], capture_output=True, text=True,
                             check=False)  # fmt: skip
        assert "hyperliquid" in res.stdout
