"""Alert sink settings: the ``[[alerts.sinks]]`` tables (where each receiver is and where its
secrets are, never their values) and ``[alerts.dispatcher]``, validated. Pure module (the shared
contracts layer): the configuration reads them, ``monitor.alerting`` delivers with them. The keys
of each kind are described in ``monitor.alerting.sinks``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from monitor.core.alert_rules import SEVERITIES, require_unique_names
from monitor.core.alertrecord import CATEGORIES
from monitor.core.errors import ConfigError

REDACTED: Final = "***"
KINDS: Final = ("json", "slack", "discord", "pagerduty", "alertmanager")
HEARTBEAT_KINDS: Final = ("json", "alertmanager")  # the kinds that take heartbeats


def grafana_base_url(value: object, where: str) -> str:
    """A Grafana base URL (``https://grafana.example.com`` or ``https://host/grafana``), validated:
    http(s), a host, no query, fragment or credentials (``alerts.grafana_url``: links in alerts
    point at ``<url>/d/<dashboard uid>``). Returned without a trailing slash; ConfigError naming
    ``where``."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: a non-empty string is required")
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        _ = parts.port  # refuses a malformed port
    except ValueError:
        raise ConfigError(f"{where}: not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{where} {redact_url(value)!r}: an http:// or https:// URL is required")
    if parts.query or parts.fragment or parts.username is not None:
        raise ConfigError(
            f"{where} {redact_url(value)!r}: the Grafana base URL only (no query, fragment or "
            "credentials)"
        )
    return value.strip().rstrip("/")


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/xyz`` -> ``https://hooks.slack.com/***``: the
    scheme and host stay (useful in logs), path, query and credentials go."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    return f"{parts.scheme}://{host}{port}/{REDACTED}"


_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SECRET_KINDS: Final = {"json": "signing key", "pagerduty": "routing key"}
_KIND_KEYS: Final = {
    "json": frozenset(), "slack": frozenset(), "discord": frozenset(),
    "pagerduty": frozenset({"source"}), "alertmanager": frozenset({"receiver", "external_url"}),
}  # fmt: skip
_REFUSED: Final = ("secret", "key", "token", "routing_key", "signing_key", "password")


@dataclass(frozen=True)
class SinkConfig:
    """One ``[[alerts.sinks]]`` table (validated). Holds where secrets are, never their values."""

    name: str
    kind: str
    url: str | None = None
    url_env: str | None = None
    url_file: str | None = None
    secret_env: str | None = None
    secret_file: str | None = None
    timeout_s: float = 10.0
    concurrency: int = 4
    min_severity: str = "warning"
    max_attempts: int = 0  # 0: no cap, retry_budget_s decides
    retry_budget_s: float = 900.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    jitter: float = 0.5
    source: str | None = None  # pagerduty
    receiver: str | None = None  # alertmanager
    external_url: str | None = None  # alertmanager
    # Grafana base URL the alert bodies link to (monitor.alerting.payloads); alerts.grafana_url
    # unless the sink's table sets its own
    grafana_url: str | None = None
    # the alert categories this sink takes (risk: the market; health: the pipeline itself)
    categories: tuple[str, ...] = CATEGORIES
    # > 0: a heartbeat every this many seconds (json, alertmanager; monitor.alerting.beacon), so
    # the receiver can page when they stop; 0: none
    heartbeat_s: float = 0.0

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.url is not None:
            shown["url"] = redact_url(self.url)
        body = ", ".join(f"{k}={v!r}" for k, v in shown.items() if v is not None)
        return f"SinkConfig({body})"

    __str__ = __repr__


@dataclass(frozen=True)
class DispatcherConfig:
    """``[alerts.dispatcher]``: the ``cascade-monitor alerts`` process."""

    max_pending: int = 10_000  # alerts consumed but not yet taken by every sink; fetching waits
    commit_interval_s: float = 1.0
    drain_timeout_s: float = 5.0  # stop(): time left to deliveries in flight before cancelling
    dedup_entries: int = 100_000  # handled (fingerprint, status, severity, started_t) remembered
    session_timeout_ms: int = 10_000  # Kafka group session: a killed dispatcher's partitions
    # move to a restarted one after this long


_SINK_FIELDS: Final = {f.name: f for f in dataclasses.fields(SinkConfig)}
_COMMON_KEYS: Final = frozenset(_SINK_FIELDS) - frozenset().union(*_KIND_KEYS.values())


def sink_from_dict(d: Mapping[str, Any], where: str) -> SinkConfig:
    """One ``[[alerts.sinks]]`` table; ConfigError naming the key for anything wrong."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: a table is required")
    for k in d:
        if k in _REFUSED or (k.endswith(("_key", "_token")) and k not in _SINK_FIELDS):
            raise ConfigError(
                f"{where}.{k}: secrets never go in the config file; "
                "name where the value is with secret_env or secret_file"
            )
    kind = d.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}.kind {kind!r}: one of {list(KINDS)}")
    known = _COMMON_KEYS | _KIND_KEYS[kind]
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} for a {kind} sink (known: {sorted(known)})"
        )
    name = d.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}.name {name!r}: 1-64 characters of [A-Za-z0-9_.-] required")
    kw: dict[str, Any] = {"name": name, "kind": kind}
    for key in ("url", "url_env", "url_file", "secret_env", "secret_file", *_KIND_KEYS[kind]):
        if key in d:
            v = d[key]
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"{where}.{key}: a non-empty string is required")
            kw[key] = v
    sources = [k for k in ("url", "url_env", "url_file") if k in kw]
    if len(sources) > 1:
        raise ConfigError(f"{where}.{sources[1]}: give one of url, url_env, url_file")
    if not sources and kind != "pagerduty":
        raise ConfigError(f"{where}.url: required (or url_env / url_file)")
    for key in ("url", "external_url"):
        if key in kw and not kw[key].startswith(("http://", "https://")):
            raise ConfigError(f"{where}.{key} {redact_url(kw[key])!r}: http:// or https:// URL")
    if "grafana_url" in d:
        kw["grafana_url"] = grafana_base_url(d["grafana_url"], f"{where}.grafana_url")
    secrets = [k for k in ("secret_env", "secret_file") if k in kw]
    if kind in SECRET_KINDS:
        if len(secrets) != 1:
            raise ConfigError(
                f"{where}.secret_env: a {kind} sink needs its {SECRET_KINDS[kind]} from exactly "
                "one of secret_env, secret_file"
            )
    elif secrets:
        raise ConfigError(
            f"{where}.{secrets[0]}: a {kind} sink takes no secret (its URL carries the token: "
            "use url_env or url_file)"
        )

    def number(key: str, integer: bool = False) -> None:
        if key not in d:
            return
        v = d[key]
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok or not math.isfinite(v):
            what = "an integer" if integer else "a finite number"
            raise ConfigError(f"{where}.{key} {v!r}: {what} is required")
        kw[key] = v if integer else float(v)

    for key in ("timeout_s", "retry_budget_s", "backoff_initial_s", "backoff_max_s", "jitter",
                "heartbeat_s"):  # fmt: skip
        number(key)
    if "categories" in d:
        cats = d["categories"]
        if (not isinstance(cats, list | tuple) or not cats
                or any(c not in CATEGORIES for c in cats)):  # fmt: skip
            raise ConfigError(f"{where}.categories {cats!r}: a non-empty list of {CATEGORIES}")
        kw["categories"] = tuple(dict.fromkeys(cats))
    for key in ("concurrency", "max_attempts"):
        number(key, integer=True)
    if "min_severity" in d:
        if d["min_severity"] not in SEVERITIES:
            raise ConfigError(f"{where}.min_severity {d['min_severity']!r}: one of {SEVERITIES}")
        kw["min_severity"] = d["min_severity"]
    cfg = SinkConfig(**kw)
    for key in ("timeout_s", "retry_budget_s", "backoff_initial_s"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{where}.{key} {getattr(cfg, key)}: must be > 0")
    if cfg.backoff_max_s < cfg.backoff_initial_s:
        raise ConfigError(f"{where}.backoff_max_s: must be >= backoff_initial_s")
    if not 0.0 <= cfg.jitter <= 1.0:
        raise ConfigError(f"{where}.jitter {cfg.jitter}: must be in [0, 1]")
    if cfg.concurrency < 1:
        raise ConfigError(f"{where}.concurrency {cfg.concurrency}: must be >= 1")
    if cfg.max_attempts < 0:
        raise ConfigError(f"{where}.max_attempts {cfg.max_attempts}: must be >= 0 (0: no cap)")
    if cfg.heartbeat_s < 0:
        raise ConfigError(f"{where}.heartbeat_s {cfg.heartbeat_s}: must be >= 0 (0: none)")
    if cfg.heartbeat_s and kind not in HEARTBEAT_KINDS:
        raise ConfigError(f"{where}.heartbeat_s: only {HEARTBEAT_KINDS} sinks take heartbeats")
    return cfg


def sinks_from_config(tables: Iterable[Mapping[str, Any]]) -> list[SinkConfig]:
    sinks = [sink_from_dict(t, f"alerts.sinks[{i}]") for i, t in enumerate(tables)]
    require_unique_names((s.name for s in sinks), "alerts.sinks")
    return sinks


def sink_to_dict(sink: SinkConfig) -> dict[str, Any]:
    """The table ``sink_from_dict`` reads back (no secret values: there are none to give)."""
    return {
        f.name: getattr(sink, f.name)
        for f in dataclasses.fields(sink)
        if getattr(sink, f.name) is not None
    }


def dispatcher_from_dict(d: Any, where: str = "alerts.dispatcher") -> DispatcherConfig:
    if not isinstance(d, Mapping):
        raise ConfigError(f"[{where}] must be a table, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(DispatcherConfig)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"[{where}] unknown key(s): {unknown} (known: {sorted(fields)})")
    kw: dict[str, Any] = {}
    for k, v in d.items():
        integer = fields[k].type in ("int", int)
        ok = isinstance(v, int) if integer else isinstance(v, int | float)
        if isinstance(v, bool) or not ok or not math.isfinite(v):
            raise ConfigError(f"{where}.{k} {v!r}: {'an integer' if integer else 'a number'}")
        kw[k] = v if integer else float(v)
    cfg = DispatcherConfig(**kw)
    for k in ("max_pending", "commit_interval_s", "dedup_entries", "session_timeout_ms"):
        if not getattr(cfg, k) > 0:
            raise ConfigError(f"{where}.{k} {getattr(cfg, k)}: must be > 0")
    if cfg.drain_timeout_s < 0:
        raise ConfigError(f"{where}.drain_timeout_s {cfg.drain_timeout_s}: must be >= 0")
    return cfg
