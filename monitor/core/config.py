"""One validated, frozen configuration, built at the entry point and passed down.

Sources, later ones winning: built-in defaults, one TOML file (``--config`` or
``$CASCADE_MONITOR_CONFIG``), then environment variables ``CASCADE_MONITOR__SECTION__KEY``
(``CASCADE_MONITOR__KAFKA__BOOTSTRAP_SERVERS=broker:9092``,
``CASCADE_MONITOR__EXCHANGES__BYBIT__ENABLED=false``); an environment value is read as a TOML value
when it parses as one, else as a string. Unknown keys, wrong types and out-of-range values are
ConfigErrors that name the key. Units are in the names (``linger_ms``, ``stale_after_s``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Union, get_args, get_origin, get_type_hints

from monitor.core.alert_rules import DEFAULT_RULES, Rule, rule_to_dict, rules_from_config
from monitor.core.errors import ConfigError
from monitor.core.health_settings import HealthConfig, health_from_dict, health_to_dict
from monitor.core.sink_settings import (
    DispatcherConfig,
    SinkConfig,
    dispatcher_from_dict,
    grafana_base_url,
    sink_to_dict,
    sinks_from_config,
)
from monitor.core.venues import registered

ENV_PREFIX: Final = "CASCADE_MONITOR__"


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cascade-monitor"


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = ""  # empty: use (and if needed start) the embedded broker
    topic_prefix: str = "cascade"
    partitions: int = 6
    replication_factor: int = 1
    retention_s: int = 6 * 3600
    linger_ms: int = 5
    max_batch_events: int = 500
    max_buffered_events: int = 1_000_000
    request_timeout_ms: int = 30_000
    client_id: str = "cascade-monitor"
    dead_letter: bool = False  # write frames the parsers refuse to <prefix>.deadletter.<exchange>
    # publish every liquidation once more under the venue-wide symbol "*" (keyed "*": one
    # consumer of the group holds the venue's whole liquidation flow, docs/risk-models.md §9)
    venue_view: bool = True

    def validate(self) -> None:
        _positive("kafka.partitions", self.partitions)
        _positive("kafka.replication_factor", self.replication_factor)
        _positive("kafka.retention_s", self.retention_s)
        _non_negative("kafka.linger_ms", self.linger_ms)
        _positive("kafka.max_batch_events", self.max_batch_events)
        _positive("kafka.max_buffered_events", self.max_buffered_events)
        _positive("kafka.request_timeout_ms", self.request_timeout_ms)
        if not self.topic_prefix or any(c not in _TOPIC_CHARS for c in self.topic_prefix):
            raise ConfigError(
                f"kafka.topic_prefix {self.topic_prefix!r}: use letters, digits, '.', '_', '-'"
            )


_TOPIC_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass(frozen=True)
class BrokerConfig:
    """The embedded broker (noida-db), used when kafka.bootstrap_servers is empty."""

    host: str = "127.0.0.1"
    port: int = 29092  # below the ephemeral range (32768-60999 on Linux): no clash with clients
    data_dir: str = ""  # empty: <state dir>/broker
    retention_check_s: float = 30.0
    start_timeout_s: float = 20.0

    def validate(self) -> None:
        _port("broker.port", self.port)
        _positive("broker.retention_check_s", self.retention_check_s)
        _positive("broker.start_timeout_s", self.start_timeout_s)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else state_dir() / "broker"


@dataclass(frozen=True)
class ExchangeConfig:
    enabled: bool = True
    ws_url: str = ""  # empty: the venue's real endpoint
    symbols: tuple[str, ...] = ()  # trade subscriptions (venue spelling); liquidations: all listed
    stale_after_s: float = 30.0  # no frame for this long: reconnect (counted)
    ping_interval_s: float = 20.0
    max_connection_age_s: float = 23.5 * 3600  # Binance closes at 24 h; rotate before
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_symbols: int = 2000
    rest_url: str = ""  # empty: the venue's real REST base (instrument metadata)
    instruments_refresh_s: float = 3600.0
    instruments_timeout_s: float = 30.0  # start-up gives up (clear error) after this long
    poll_interval_s: float = 30.0  # one round of REST polls (open interest) spread over this
    # Bybit: also subscribe the liquidations of every listed symbol, not only the configured ones
    all_liquidations: bool = True

    def validate(self, name: str) -> None:
        if self.ws_url and not self.ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"exchanges.{name}.ws_url {self.ws_url!r}: must be ws:// or wss://")
        if self.rest_url and not self.rest_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"exchanges.{name}.rest_url {self.rest_url!r}: must be http:// or https://"
            )
        _positive(f"exchanges.{name}.instruments_refresh_s", self.instruments_refresh_s)
        _positive(f"exchanges.{name}.instruments_timeout_s", self.instruments_timeout_s)
        _positive(f"exchanges.{name}.poll_interval_s", self.poll_interval_s)
        for key in ("stale_after_s", "ping_interval_s", "max_connection_age_s"):
            _positive(f"exchanges.{name}.{key}", getattr(self, key))
        _positive(f"exchanges.{name}.backoff_initial_s", self.backoff_initial_s)
        if self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError(f"exchanges.{name}.backoff_max_s must be >= backoff_initial_s")
        _positive(f"exchanges.{name}.max_symbols", self.max_symbols)
        for s in self.symbols:
            if not s or not s.replace("-", "").replace("_", "").isalnum():
                raise ConfigError(f"exchanges.{name}.symbols: bad symbol {s!r}")


@dataclass(frozen=True)
class ConsumerConfig:
    group_prefix: str = "cascade-risk"
    max_pairs: int = (
        4096  # state capacity per consumer; events of further pairs are counted, skipped
    )
    max_exported_symbols: int = 200  # most active N pairs exported per exchange
    vol_interval_s: float = 1.0  # EWMA volatility sampling interval
    vol_lambda: float = 0.94  # RiskMetrics decay per interval
    commit_interval_s: float = 1.0
    fetch_max_records: int = 2000
    lag_refresh_s: float = 2.0
    # on assignment, rebuild the partitions' state from this much history (0: off); see
    # consumers.warmup (offsets_for_times). One hour: the liquidation-rate baseline's own warm-up
    # (risk.baseline_warmup_s), so a restarted consumer has its z-score and surge baseline back
    # at once (docs/risk-models.md §9.3); needs kafka.retention_s >= it
    warmup_s: float = 3600.0
    # events older than their pair's latest by more than this are counted (too_late) and dropped;
    # within it, the kernels handle disorder exactly (OKX says its feed can arrive out of order)
    late_tolerance_s: float = 5.0
    # event ids applied are kept per pair for this much of the pair's event time, so a venue's
    # replay or a producer restart adds nothing (consumers.dedup); at least late_tolerance_s
    dedup_liquidation_window_s: float = 900.0
    dedup_trade_window_s: float = 60.0
    # per-pair risk snapshots to <prefix>.risk every this many seconds (0: off), for the asset view
    risk_publish_s: float = 5.0
    # event-time ticks (consumers.event_ticks): a pair's events are held per tick of alert_eval_s
    # and applied at the tick's close, once the exchange's event clock is alert_lateness_s past
    # it; the pair's alert rules run at every close of a tick with events, and every
    # alert_quiet_s of event time while an alert of the pair is firing or pending. Events less
    # than alert_lateness_s out of time order with each other give the same transitions
    # whatever their interleaving (live or backtest); a tick's work waits up to
    # alert_eval_s + alert_lateness_s
    alert_eval_s: float = 1.0
    alert_lateness_s: float = 1.0
    alert_quiet_s: float = 1.0

    def validate(self) -> None:
        _positive("consumer.max_pairs", self.max_pairs)
        for name in ("warmup_s", "late_tolerance_s", "risk_publish_s", "alert_lateness_s"):
            v = getattr(self, name)
            if not 0.0 <= v < math.inf:
                raise ConfigError(f"consumer.{name} {v}: must be >= 0 and finite")
        for name in ("alert_eval_s", "alert_quiet_s"):
            v = getattr(self, name)
            if not 0.0 < v < math.inf:
                raise ConfigError(f"consumer.{name} {v}: must be > 0 and finite")
        _positive("consumer.max_exported_symbols", self.max_exported_symbols)
        _positive("consumer.vol_interval_s", self.vol_interval_s)
        if not 0.0 < self.vol_lambda < 1.0:
            raise ConfigError(f"consumer.vol_lambda {self.vol_lambda}: must be in (0, 1)")
        _positive("consumer.commit_interval_s", self.commit_interval_s)
        _positive("consumer.fetch_max_records", self.fetch_max_records)
        _positive("consumer.lag_refresh_s", self.lag_refresh_s)
        for name in ("dedup_liquidation_window_s", "dedup_trade_window_s"):
            v = getattr(self, name)
            if not self.late_tolerance_s <= v < math.inf or v <= 0:
                raise ConfigError(
                    f"consumer.{name} {v}: must be > 0, finite and >= consumer.late_tolerance_s "
                    f"({self.late_tolerance_s}), or a repeat older than the window could count"
                )


@dataclass(frozen=True)
class RiskConfig:
    """The risk models' main knobs (docs/risk-models.md); the rest keep their documented defaults in
    the model modules (consumers/models/). Checked there too."""

    refit_interval_s: float = 5.0  # Hawkes refits and rank updates, per consumer tick
    hawkes_window_s: float = 900.0  # rolling MLE window (s2)
    hawkes_min_events: int = 100  # fewer liquidations in the window: branching ratio undefined
    hawkes_baseline_step: bool = True  # fit a one-step baseline too, kept when BIC prefers it
    vpin_bucket_usd: float = 0.0  # VPIN bucket size (s4); 0: auto, 1/50 of the hourly volume
    vpin_warmup_s: float = 900.0  # auto bucket size: trading time before the first bucket
    baseline_warmup_s: float = 3600.0  # liquidation-rate baseline: time before a z-score (s1)
    map_leverages: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)  # leverage buckets (s6)
    map_leverage_weights: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)
    map_half_life_s: float = 43_200.0  # positions on the map decay with this half-life
    stress_horizon_s: float = 300.0  # horizon h of the expected liquidations and MSI
    # s7, in the order branching, feedback, liq_zscore, liq_share, vpin, volatility,
    # margin_stress, surge; fitted with the calibration (docs/detection.md §6)
    score_weights: tuple[float, ...] = (0.1068, 0.0, 0.0, 0.0, 0.0, 0.3133, 0.0, 0.5799)
    # the score's logistic calibration (intercept, slope) on the raw weighted mean (s7); slope 0:
    # the raw mean
    score_calibration: tuple[float, ...] = (-5.322, 7.758)
    surge_floor_usd_s: float = 1_000.0  # the liquidation surge's floor for a pair (s9)
    surge_floor_venue_usd_s: float = 5_000.0  # ... and for the venue-wide row
    score_warning: float = 0.7  # = the cascade-risk rule (docs/alerts.md §2.4)
    score_critical: float = 0.85

    def validate(self) -> None:
        _positive("risk.refit_interval_s", self.refit_interval_s)
        _positive("risk.hawkes_window_s", self.hawkes_window_s)
        _positive("risk.hawkes_min_events", self.hawkes_min_events)
        _non_negative("risk.vpin_bucket_usd", self.vpin_bucket_usd)
        _non_negative("risk.vpin_warmup_s", self.vpin_warmup_s)
        _non_negative("risk.baseline_warmup_s", self.baseline_warmup_s)
        if len(self.map_leverages) != len(self.map_leverage_weights) or not self.map_leverages:
            raise ConfigError("risk.map_leverages and risk.map_leverage_weights differ in length")
        _positive("risk.map_half_life_s", self.map_half_life_s)
        _positive("risk.stress_horizon_s", self.stress_horizon_s)
        if (
            len(self.score_weights) != 8
            or min(self.score_weights) < 0
            or not any(self.score_weights)
        ):
            raise ConfigError("risk.score_weights: 8 weights >= 0, not all 0")
        if len(self.score_calibration) != 2 or self.score_calibration[1] < 0:
            raise ConfigError("risk.score_calibration: (intercept, slope), slope >= 0")
        _positive("risk.surge_floor_usd_s", self.surge_floor_usd_s)
        _positive("risk.surge_floor_venue_usd_s", self.surge_floor_venue_usd_s)
        if not 0 < self.score_warning <= self.score_critical <= 1:
            raise ConfigError(
                "risk.score_warning/score_critical: need 0 < warning <= critical <= 1"
            )


@dataclass(frozen=True)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 9464  # 0: pick a free port

    def validate(self) -> None:
        if self.port != 0:
            _port("metrics.port", self.port)


@dataclass(frozen=True)
class AlertsConfig:
    """``[alerts]``: the rules the consumers evaluate (``[[alerts.rules]]`` tables, see
    monitor/alerting/rules.py; the defaults apply when the key is absent, ``rules = []`` turns
    them off) and where the dispatcher delivers what they fire.

    ``grafana_url``: the Grafana that serves the dashboards of deploy/grafana, e.g.
    ``https://grafana.example.com`` (a sub-path such as ``https://host/grafana`` works). When set,
    every alert body links to the pair's drill-down dashboard around the alert
    (``monitor.alerting.payloads.dashboard_url``); empty (the default), alerts carry no link. A
    sink's own ``grafana_url`` overrides it for that sink. http(s) only, no query or credentials."""

    enabled: bool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES
    # ``[[alerts.sinks]]`` (monitor/alerting/sinks.py): where ``cascade-monitor alerts`` delivers
    sinks: tuple[SinkConfig, ...] = ()
    dispatcher: DispatcherConfig = field(default_factory=DispatcherConfig)
    grafana_url: str = ""


def _build_alerts(data: Any) -> AlertsConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"[alerts] must be a table, got {data!r}")
    known = {f.name for f in dataclasses.fields(AlertsConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"[alerts] unknown key(s): {', '.join(unknown)} (known: {sorted(known)})")
    kw: dict[str, Any] = {}
    if "enabled" in data:
        kw["enabled"] = _coerce("alerts.enabled", data["enabled"], bool)
    if "rules" in data:
        tables = data["rules"]
        if not isinstance(tables, list | tuple) or not all(isinstance(t, Mapping) for t in tables):
            raise ConfigError("alerts.rules: an array of tables ([[alerts.rules]]) is required")
        kw["rules"] = tuple(rules_from_config(tables))
    if "sinks" in data:
        tables = data["sinks"]
        if not isinstance(tables, list | tuple) or not all(isinstance(t, Mapping) for t in tables):
            raise ConfigError("alerts.sinks: an array of tables ([[alerts.sinks]]) is required")
        kw["sinks"] = tuple(sinks_from_config(tables))
    if "dispatcher" in data:
        kw["dispatcher"] = dispatcher_from_dict(data["dispatcher"])
    if data.get("grafana_url", "") != "":  # "" (the default) turns the links off
        kw["grafana_url"] = grafana_base_url(data["grafana_url"], "alerts.grafana_url")
    if kw.get("grafana_url"):  # sinks without their own link to the common Grafana
        kw["sinks"] = tuple(
            s if s.grafana_url else dataclasses.replace(s, grafana_url=kw["grafana_url"])
            for s in kw.get("sinks", ())
        )
    return AlertsConfig(**kw)


def _default_exchanges() -> dict[str, ExchangeConfig]:
    """Every registered venue with its declared defaults (``monitor.core.venues``)."""
    venues = registered()
    if not venues:
        raise ConfigError(
            "no venues are registered: import producers.registry before building a configuration"
        )
    return {
        name: ExchangeConfig(enabled=v.enabled, symbols=v.symbols) for name, v in venues.items()
    }


def _unknown_exchange(name: str) -> ConfigError:
    return ConfigError(f"exchanges.{name}: unknown exchange (known: {sorted(registered())})")


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    consumer: ConsumerConfig = field(default_factory=ConsumerConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    exchanges: Mapping[str, ExchangeConfig] = field(default_factory=_default_exchanges)
    health: HealthConfig = field(default_factory=HealthConfig)  # [health]: pipeline health

    def validate(self) -> Config:
        self.kafka.validate()
        self.broker.validate()
        self.consumer.validate()
        self.risk.validate()
        self.metrics.validate()
        if self.consumer.warmup_s > self.kafka.retention_s:
            raise ConfigError(
                f"consumer.warmup_s {self.consumer.warmup_s}: the warm-up replays history the "
                f"topics keep, so it must be <= kafka.retention_s ({self.kafka.retention_s})"
            )
        for name, ex in self.exchanges.items():
            if name not in registered():
                raise _unknown_exchange(name)
            ex.validate(name)
        return self

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers or self.broker.bootstrap

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.kafka.bootstrap_servers

    def topic(self, exchange: str) -> str:
        return f"{self.kafka.topic_prefix}.events.{exchange}"

    @property
    def risk_topic(self) -> str:
        return f"{self.kafka.topic_prefix}.risk"

    @property
    def alerts_topic(self) -> str:
        """Alert transitions (consumers -> ``cascade-monitor alerts``), keyed by fingerprint."""
        return f"{self.kafka.topic_prefix}.alerts"

    @property
    def health_topic(self) -> str:
        """Components' heartbeats (-> the dispatcher's health watch), keyed by component."""
        return f"{self.kafka.topic_prefix}.health"

    def dead_letter_topic(self, exchange: str) -> str:
        return f"{self.kafka.topic_prefix}.deadletter.{exchange}"

    def group_id(self, exchange: str) -> str:
        return f"{self.consumer.group_prefix}.{exchange}"

    def ws_url(self, exchange: str) -> str:
        """The configured websocket URL, else the venue's real one."""
        return self.exchanges[exchange].ws_url or registered()[exchange].ws_url

    def rest_url(self, exchange: str) -> str:
        """The configured REST base, else the venue's real one."""
        return self.exchanges[exchange].rest_url or registered()[exchange].rest_url

    def enabled_exchanges(self) -> list[str]:
        return [n for n, e in self.exchanges.items() if e.enabled]

    def with_overrides(self, **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys replaced, validated like a file (used by the CLI and tests)."""
        return build(_merge(to_dict(self), sections))


# ---- building -------------------------------------------------------------------------------


def _positive(key: str, v: float) -> None:
    if not v > 0:
        raise ConfigError(f"{key} = {v!r}: must be > 0")


def _non_negative(key: str, v: float) -> None:
    if v < 0:
        raise ConfigError(f"{key} = {v!r}: must be >= 0")


def _port(key: str, v: int) -> None:
    if not 1 <= v <= 65535:
        raise ConfigError(f"{key} = {v!r}: must be a TCP port (1..65535)")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _coerce(key, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} does not fit {tp}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if origin is tuple:
        (item,) = {a for a in get_args(tp) if a is not Ellipsis}
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - programming error


def _build_section(cls: type[Any], key: str, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{key}] must be a table, got {data!r}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"[{key}] unknown key(s): {', '.join(unknown)} (known: {sorted(names)})")
    return cls(**{k: _coerce(f"{key}.{k}", v, hints[k]) for k, v in data.items()})


def build(data: Mapping[str, Any]) -> Config:
    sections = {"kafka": KafkaConfig, "broker": BrokerConfig, "consumer": ConsumerConfig,
                "risk": RiskConfig, "metrics": MetricsConfig}  # fmt: skip
    unknown = sorted(set(data) - set(sections) - {"exchanges", "alerts", "health"})
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}")
    kw: dict[str, Any] = {
        name: _build_section(cls, name, data.get(name, {})) for name, cls in sections.items()
    }
    kw["alerts"] = _build_alerts(data.get("alerts", {}))
    kw["health"] = health_from_dict(data.get("health", {}))
    ex_data = data.get("exchanges", {})
    if not isinstance(ex_data, Mapping):
        raise ConfigError("[exchanges] must be a table of exchange tables")
    exchanges = _default_exchanges()
    for name, section in ex_data.items():
        if name not in exchanges:
            raise _unknown_exchange(name)
        base = to_dict(exchanges[name])
        exchanges[name] = _build_section(ExchangeConfig, f"exchanges.{name}", _merge(base, section))
    kw["exchanges"] = types.MappingProxyType(exchanges)
    return Config(**kw).validate()


def to_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, Config):
        d = {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
             if f.name != "exchanges"}  # fmt: skip
        d["exchanges"] = {k: to_dict(v) for k, v in obj.exchanges.items()}
        return d
    if isinstance(obj, HealthConfig):
        return health_to_dict(obj)
    if isinstance(obj, AlertsConfig):
        a: dict[str, Any] = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        a["rules"] = [rule_to_dict(r) for r in obj.rules]
        a["sinks"] = [sink_to_dict(x) for x in obj.sinks]
        for s in a["sinks"]:  # inherited from alerts.grafana_url: written there only
            if obj.grafana_url and s.get("grafana_url") == obj.grafana_url:
                del s["grafana_url"]
        a["dispatcher"] = dataclasses.asdict(obj.dispatcher)
        return a
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if len(path) < 2:
            raise ConfigError(f"{name}: expected {ENV_PREFIX}SECTION__KEY")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = out
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = value
    return out


def load(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from defaults, a TOML file and the environment."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = path or env.get("CASCADE_MONITOR_CONFIG")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p}: {exc}") from None
    return build(_merge(data, _env_overrides(env)))
