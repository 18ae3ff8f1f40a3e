"""What the Kubernetes and compose tests check a workload against: the CLI's own argument parser,
the configuration loader, and the vendored CRD schemas of KEDA and the Prometheus Operator."""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

import producers.registry  # noqa: F401  (registers the venues: load() needs them)
from monitor.app.cli import _parser
from monitor.core.config import Config, load

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent.name for p in (K8S / "overlays").glob("*/kustomization.yaml"))
CRDS = ROOT / "tests" / "data" / "crds"

Render = Callable[[str], list[dict[str, Any]]]  # the `render` fixture: overlay -> its objects

# The long-running commands a deployment runs, and the role (app.kubernetes.io/component, the
# compose service's name) each one is.
SERVICE_ROLES = {
    "produce": "producer",
    "consume": "consumer",
    "aggregate": "aggregator",
    "alerts": "alerts",
}
VENUE_ROLES = ("producer", "consumer")

# Trigger metadata keys of KEDA's kafka scaler (pkg/scalers/kafka_scaler.go, kafkaMetadata, at
# the vendored CRDs' version v2.20.2; `<key>FromEnv` reads the key from the target's env). KEDA
# ignores a key it does not know, so a misspelt one would silently fall back to its default.
KEDA_KAFKA_KEYS = frozenset(
    {
        "bootstrapServers", "consumerGroup", "topic", "partitionLimitation", "lagThreshold",
        "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers",
        "excludePersistentLag", "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag",
        "ensureEvenDistributionOfPartitions", "version", "tls", "unsafeSsl", "sasl",
        "saslTokenProvider", "awsRegion",
    }
)  # fmt: skip
KEDA_KAFKA_FROM_ENV = frozenset({"bootstrapServers", "consumerGroup", "topic"})


def cli(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` with cascade-monitor's parser; a failed assertion with argparse's message
    when the CLI would refuse it."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return _parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(
            f"not a cascade-monitor command line {argv}: {err.getvalue()}"
        ) from None


def service_role(argv: list[str]) -> tuple[str, argparse.Namespace]:
    """The role of a long-running command line, with its parsed arguments."""
    args = cli(argv)
    assert args.command in SERVICE_ROLES, f"{argv}: not a long-running service command"
    return SERVICE_ROLES[args.command], args


def build_config(env: Mapping[str, str], mounts: Mapping[str, Path]) -> Config:
    """The configuration a process with environment ``env`` builds, its config file read from
    this repository through ``mounts`` (container directory -> repository directory)."""
    environ = dict(env)
    path = environ.get("CASCADE_MONITOR_CONFIG")
    if path is not None:
        for inside, outside in mounts.items():
            if path.startswith(inside.rstrip("/") + "/"):
                environ["CASCADE_MONITOR_CONFIG"] = str(outside / path[len(inside) :].lstrip("/"))
                break
        else:
            raise AssertionError(f"CASCADE_MONITOR_CONFIG={path} is on no mounted volume")
        assert Path(environ["CASCADE_MONITOR_CONFIG"]).is_file(), environ
    return load(environ=environ)


def sink_secret_env(cfg: Config) -> dict[str, str]:
    """The environment variables the configured alert sinks read their secrets from, each with
    a placeholder value of the right form (a URL for a url_env)."""
    env = {s.url_env: "https://receiver.invalid/hook" for s in cfg.alerts.sinks if s.url_env}
    env.update({s.secret_env: "placeholder-key" for s in cfg.alerts.sinks if s.secret_env})
    return env


def strict_openapi(schema: Any) -> Any:
    """An OpenAPI v3 schema of a CRD as a JSON Schema that refuses unknown fields, as the API
    server does (it prunes or, with strict field validation, rejects them) except where the
    schema says ``x-kubernetes-preserve-unknown-fields``."""
    if isinstance(schema, list):
        return [strict_openapi(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_openapi(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class CrdSchema:
    """One vendored CRD: its group, kind, and a validator per served version."""

    source: str
    group: str
    kind: str
    validators: Mapping[str, jsonschema.Draft4Validator]

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        assert (group, obj["kind"]) == (self.group, self.kind), obj["apiVersion"]
        assert version in self.validators, f"{self.source} serves no {obj['apiVersion']}"
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in self.validators[version].iter_errors(copy.deepcopy(dict(obj)))
        ]


def crd_schemas() -> dict[str, CrdSchema]:
    """The vendored CRDs (tests/data/crds, see its README), by kind."""
    out: dict[str, CrdSchema] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert crd["kind"] == "CustomResourceDefinition", path
        validators = {
            v["name"]: jsonschema.Draft4Validator(strict_openapi(v["schema"]["openAPIV3Schema"]))
            for v in crd["spec"]["versions"]
            if v["served"]
        }
        kind = crd["spec"]["names"]["kind"]
        out[kind] = CrdSchema(path.name, crd["spec"]["group"], kind, validators)
    return out
