"""Write the Grafana dashboards of cascade-monitor from their code (deploy/grafana/boards/).

    python deploy/grafana/generate.py            # (re)write the committed JSON files
    python deploy/grafana/generate.py --check    # exit 1 if a committed file differs

Each dashboard is written twice, byte for byte the same: to deploy/grafana/dashboards/ (the
compose Grafana's file provider reads it there) and to deploy/k8s/grafana/dashboards/ (the
Kubernetes component turns each into a ConfigMap for the Grafana sidecar; kustomize reads files
only under its own folder). Needs the test extras (grafana-foundation-sdk pinned to its Grafana
11.6 schema variant).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script or loaded by path: boards/ is beside this file
    sys.path.insert(0, str(HERE))

from boards import render  # noqa: E402

TARGETS = (HERE / "dashboards", HERE.parent / "k8s" / "grafana" / "dashboards")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare, write nothing; 1 if different")
    p.add_argument(
        "--out",
        type=Path,
        action="append",
        help="write here instead (repeatable; default: the two committed folders)",
    )
    args = p.parse_args(argv)
    files = render()
    stale: list[str] = []
    for folder in args.out or TARGETS:
        present = {f.name for f in folder.glob("*.json")} if folder.is_dir() else set()
        for name, text in files.items():
            path = folder / name
            if args.check:
                if not path.is_file() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
            else:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        for extra in sorted(present - set(files)):  # a dashboard no longer generated
            if args.check:
                stale.append(f"{folder / extra} (no longer generated)")
            else:
                (folder / extra).unlink()
    if stale:
        print("out of date (run python deploy/grafana/generate.py):\n  " + "\n  ".join(stale))
        return 1
    if not args.check:
        print(f"wrote {len(files)} dashboards to " + ", ".join(str(f) for f in args.out or TARGETS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
