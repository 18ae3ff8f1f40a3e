"""``cascade-monitor report``: a post-mortem of one pair over a time window, as a PNG and a
self-contained HTML page (the PNG embedded as base64, the alert marks and peaks as a table).

What is drawn, on one time axis: price (last trade and mark), the 60 s liquidation rates of longs
and shorts, the composite score with every component and the default alert levels, the Hawkes
branching ratio, and the alert marks as vertical lines.

Where the window comes from is a ``ReportSource``: anything that, given a ``Window`` (exchange,
symbol, start, end), returns ``ReportData`` (one ``Series`` of (t, value) per quantity named in
``QUANTITIES``, score components as ``component:<name>``, plus ``AlertMark``s). Implemented here:
``PrometheusSource`` (``query_range`` over the HTTP API on the metrics the monitor exports). A
backtest of recordings is another source with the same method.

Bad input is a ``ReportError`` (a ``MonitorError``: the CLI prints its message and exits 2): an
unreachable Prometheus, a pair it has never seen, a window without data, a bad time. Plotting needs
matplotlib, the ``report`` extra (``pip install 'cascade-monitor[report]'``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from monitor.core.alert_rules import DEFAULT_RULES
from monitor.core.errors import MonitorError

# The quantities a source gives (all optional but at least one must have data).
QUANTITIES: Final = {
    "price": "last trade price, USD",
    "mark": "mark price, USD",
    "liq_long": "long liquidations, 60 s decayed rate, USD/s",
    "liq_short": "short liquidations, 60 s decayed rate, USD/s",
    "score": "composite cascade score, 0..1",
    "branching_ratio": "Hawkes branching ratio n",
}  # plus "component:<name>" for each score component
MAX_POINTS: Final = 600  # per series; the step follows from the window
MAX_LABELS: Final = 20  # alert marks named on the figure (all are listed in the HTML page)
_RULES: Final = {r.name: r for r in DEFAULT_RULES}


class ReportError(MonitorError):
    """The report cannot be made; the message says why (no traceback for the user)."""


@dataclass(frozen=True)
class Window:
    exchange: str
    symbol: str
    start: float  # Unix seconds
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end <= self.start:
            raise ReportError(f"the window must end after it starts ({self.start} .. {self.end})")


@dataclass(frozen=True)
class Series:
    t: tuple[float, ...]  # Unix seconds, increasing
    v: tuple[float, ...]


@dataclass(frozen=True)
class AlertMark:
    t: float
    text: str  # "demo-long-liquidations firing (critical)"


@dataclass
class ReportData:
    series: dict[str, Series] = field(default_factory=dict)
    alerts: list[AlertMark] = field(default_factory=list)
    source: str = ""  # shown in the title: "Prometheus http://..." / "backtest of ..."

    def has_data(self) -> bool:
        return any(s.t for s in self.series.values())


class ReportSource(Protocol):
    """Where a report's window comes from."""

    def load(self, window: Window) -> ReportData: ...


# ---- the Prometheus source ------------------------------------------------------------------------


def _selector(name: str, w: Window, **extra: str) -> str:
    labels = {"exchange": w.exchange, "symbol": w.symbol, **extra}
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    return f"{name}{{{inner}}}"


class PrometheusSource:
    """Reads the window with ``query_range`` from a Prometheus that scrapes the monitor."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        if not re.match(r"^https?://[^/\s]+", url):
            raise ReportError(f"--prometheus {url!r}: an http:// or https:// URL is required")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def _api(self, path: str, **params: str | list[str]) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                reason = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                reason = exc.reason
            raise ReportError(f"Prometheus at {self.url} refused {path}: {reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            why = getattr(exc, "reason", exc)
            raise ReportError(f"cannot reach Prometheus at {self.url}: {why}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ReportError(f"Prometheus at {self.url}: {path} failed: {body}")
        return body["data"]

    def _range(self, query: str, w: Window, step: float) -> list[dict[str, Any]]:
        data = self._api("query_range", query=query, start=f"{w.start:.3f}", end=f"{w.end:.3f}",
                         step=f"{step:g}")  # fmt: skip
        return list(data["result"])

    def _check_pair(self, w: Window) -> None:
        """ReportError unless Prometheus has ever seen the pair (at any time)."""
        names = ("cascade_liquidation_rate_usd_per_second", "cascade_last_price")
        on_exchange = [f"{n}{{exchange={json.dumps(w.exchange)}}}" for n in names]
        symbols = self._api("label/symbol/values", **{"match[]": on_exchange})
        if w.symbol in symbols:
            return
        exchanges = self._api("label/exchange/values", **{"match[]": list(names)})
        if w.exchange not in exchanges:
            raise ReportError(f"unknown exchange {w.exchange!r}: Prometheus at {self.url} has data "
                              f"for {sorted(exchanges) or 'none'}")  # fmt: skip
        raise ReportError(f"unknown pair: Prometheus at {self.url} has no {w.exchange} "
                          f"{w.symbol!r} (it has {', '.join(sorted(symbols)[:20])})")  # fmt: skip

    def load(self, window: Window) -> ReportData:
        self._check_pair(window)
        step = max(1.0, math.ceil((window.end - window.start) / MAX_POINTS))
        queries = {
            "price": _selector("cascade_last_price", window),
            "mark": _selector("cascade_mark_price", window),
            "liq_long": _selector("cascade_liquidation_rate_usd_per_second", window, side="long",
                                  window="60s"),
            "liq_short": _selector("cascade_liquidation_rate_usd_per_second", window,
                                   side="short", window="60s"),
            "score": _selector("cascade_cascade_score", window),
            "branching_ratio": _selector("cascade_branching_ratio", window),
        }  # fmt: skip
        data = ReportData(source=f"Prometheus {self.url}")
        for name, query in queries.items():
            for r in self._range(f"max({query})", window, step):
                data.series[name] = _series(r["values"])
        components = _selector("cascade_cascade_score_component", window)
        for r in self._range(f"max by (component) ({components})", window, step):
            data.series[f"component:{r['metric'].get('component', '?')}"] = _series(r["values"])
        data.alerts = self._alerts(window, step)
        return data

    def _alerts(self, w: Window, step: float) -> list[AlertMark]:
        """Transitions of the consumers' rules on the exchange (the counter has no symbol label:
        marked for any pair of the venue), and Prometheus-side alerts of the pair while firing."""
        marks: list[AlertMark] = []
        emitted = f"cascade_alerts_emitted_total{{exchange={json.dumps(w.exchange)}}}"
        for r in self._range(emitted, w, step):
            m = r["metric"]
            text = f"{m.get('rule')} {m.get('status')} ({m.get('severity')}), any {w.exchange} pair"
            previous = 0.0  # the counter is created at its first transition
            for t, v in r["values"]:
                value = float(v)
                if value > previous or 0 < value < previous:  # more, or more after a restart
                    marks.append(AlertMark(float(t), text))
                previous = value
        firing = _selector("ALERTS", w, alertstate="firing")
        for r in self._range(firing, w, step):
            last = -math.inf
            for t, _ in r["values"]:
                if float(t) - last > step * 1.5:  # the start of a firing run
                    marks.append(AlertMark(float(t), f"{r['metric'].get('alertname')} firing"))
                last = float(t)
        return sorted(marks, key=lambda a: a.t)


def _series(values: Sequence[Sequence[Any]]) -> Series:
    pts = [(float(t), float(v)) for t, v in values if math.isfinite(float(v))]
    return Series(tuple(t for t, _ in pts), tuple(v for _, v in pts))


# ---- times --------------------------------------------------------------------------------------

_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNIT_S: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if m is None or float(m.group(1)) <= 0:
        raise ReportError(f"--last {text!r}: a duration such as 90s, 30m, 2h or 1d is required")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def parse_time(text: str, what: str) -> float:
    """Unix seconds, or ISO 8601 (UTC unless it names an offset: ``2025-01-27T10:00:00Z``)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(
            f"{what} {text!r}: Unix seconds or an ISO 8601 time is required"
        ) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---- drawing -----------------------------------------------------------------------------------


def render_png(window: Window, data: ReportData) -> bytes:
    """The four panels on one time axis, as PNG bytes (matplotlib, Agg backend)."""
    try:  # an optional extra, imported only when a report is drawn
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.dates as mdates  # noqa: PLC0415
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise ReportError(
            "the report needs matplotlib: pip install 'cascade-monitor[report]'"
        ) from None
    s = data.series

    def when(x: Series) -> list[datetime]:
        return [datetime.fromtimestamp(t, UTC) for t in x.t]

    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True, height_ratios=(3, 2, 3, 2))
    price, liq, score, branch = axes
    for key, label, style in (("price", "last trade", "-"), ("mark", "mark", "--")):
        if key in s:
            price.plot(when(s[key]), s[key].v, style, label=label, linewidth=1.2)
    price.set_ylabel("price, USD")
    for key, label, colour in (
        ("liq_long", "longs", "tab:red"),
        ("liq_short", "shorts", "tab:green"),
    ):
        if key in s:
            liq.fill_between(when(s[key]), s[key].v, step="post", alpha=0.35, color=colour)
            liq.plot(when(s[key]), s[key].v, color=colour, label=f"{label} liquidated (60 s)",
                     linewidth=1, drawstyle="steps-post")  # fmt: skip
    liq.set_ylabel("liquidations, USD/s")
    for key in sorted(k for k in s if k.startswith("component:")):
        score.plot(when(s[key]), s[key].v, linewidth=0.8, alpha=0.7, label=key.split(":", 1)[1])
    if "score" in s:
        score.plot(when(s["score"]), s["score"].v, color="black", linewidth=2, label="score")
    rule = _RULES["cascade-risk"]
    for level, colour in ((rule.warning, "orange"), (rule.critical, "red")):
        if level is not None:
            score.axhline(level, color=colour, linestyle="--", linewidth=1)
    score.set_ylim(0, 1)
    score.set_ylabel("score and components")
    if "branching_ratio" in s:
        br = s["branching_ratio"]
        branch.plot(when(br), br.v, color="tab:purple", linewidth=1.5, label="branching ratio n")
    n_warning = _RULES["self-exciting-liquidations"].warning
    if n_warning is not None:
        branch.axhline(n_warning, color="orange", linestyle="--", linewidth=1)
    branch.set_ylabel("branching ratio")
    for mark in data.alerts[:MAX_LABELS]:  # named in the top panel, drawn in every one
        price.annotate(mark.text, xy=(datetime.fromtimestamp(mark.t, UTC), 0.98),
                       xycoords=("data", "axes fraction"), rotation=90, fontsize=6,
                       va="top", ha="right", color="tab:red", alpha=0.8)  # fmt: skip
    for ax in axes:
        for mark in data.alerts:
            ax.axvline(datetime.fromtimestamp(mark.t, UTC), color="tab:red", alpha=0.5,
                       linewidth=1, linestyle=":")  # fmt: skip
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8, ncol=4)
        ax.grid(alpha=0.3)
    branch.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=UTC))  # type: ignore[no-untyped-call]
    branch.set_xlim(
        datetime.fromtimestamp(window.start, UTC), datetime.fromtimestamp(window.end, UTC)
    )
    fig.suptitle(f"{window.exchange} {window.symbol}: {_utc(window.start)} to {_utc(window.end)}"
                 f"  ({len(data.alerts)} alert marks, dotted)", fontsize=12)  # fmt: skip
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _peak(s: Mapping[str, Series], key: str, fmt: str) -> str:
    if key not in s or not s[key].v:
        return "no data"
    i = max(range(len(s[key].v)), key=lambda j: s[key].v[j])
    return f"{fmt.format(s[key].v[i])} at {_utc(s[key].t[i])}"


def render_html(window: Window, data: ReportData, png: bytes) -> str:
    """One self-contained page: the figure (base64 PNG), the peaks and the alert marks."""
    e = html.escape
    title = f"cascade-monitor report: {window.exchange} {window.symbol}"
    peaks = [("score", _peak(data.series, "score", "{:.2f}")),
             ("branching ratio", _peak(data.series, "branching_ratio", "{:.2f}")),
             ("long liquidations (60 s)", _peak(data.series, "liq_long", "${:,.0f}/s")),
             ("short liquidations (60 s)", _peak(data.series, "liq_short", "${:,.0f}/s"))]  # fmt: skip
    rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in peaks)
    marks = "".join(f"<tr><td>{e(_utc(a.t))}</td><td>{e(a.text)}</td></tr>" for a in data.alerts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        "<style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{e(_utc(window.start))} to {e(_utc(window.end))}, from "
        f"{e(data.source)}</p>"
        f'<img alt="{e(title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<h2>Peaks</h2><table>{rows}</table>"
        f"<h2>Alert marks</h2><table>{marks or '<tr><td>none in the window</td></tr>'}</table>"
        "</body></html>\n"
    )


def make_report(source: ReportSource, window: Window, out: Path) -> tuple[Path, Path]:
    """Load the window, draw it, write ``<out>.png`` and ``<out>.html``; the two paths."""
    data = source.load(window)
    if not data.has_data():
        raise ReportError(f"no data for {window.exchange} {window.symbol} between "
                          f"{_utc(window.start)} and {_utc(window.end)} ({data.source})")  # fmt: skip
    png = render_png(window, data)
    png_path, html_path = out.with_name(out.name + ".png"), out.with_name(out.name + ".html")
    try:
        png_path.parent.mkdir(parents=True, exist_ok=True)
        png_path.write_bytes(png)
        html_path.write_text(render_html(window, data, png), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out}: {exc}") from None
    return png_path, html_path


def report(
    prometheus: str, exchange: str, symbol: str, *, start: str | None, end: str | None,
    last: str | None, out: Path | None, now: float,
) -> tuple[Path, Path]:  # fmt: skip
    """The CLI's ``report``: the window from ``--from``/``--to`` or ``--last`` (ending ``now``),
    read from Prometheus, written to ``<out>.png`` and ``<out>.html``."""
    if last is not None:
        if start is not None or end is not None:
            raise ReportError("give either --last or --from/--to")
        window = Window(exchange, symbol, now - parse_duration(last), now)
    elif start is not None:
        t_end = parse_time(end, "--to") if end is not None else now
        window = Window(exchange, symbol, parse_time(start, "--from"), t_end)
    else:
        raise ReportError("give the window: --last 30m, or --from (and --to)")
    stamp = datetime.fromtimestamp(window.start, UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out or Path(f"cascade-report-{exchange}-{symbol}-{stamp}")
    return make_report(PrometheusSource(prometheus), window, base)
