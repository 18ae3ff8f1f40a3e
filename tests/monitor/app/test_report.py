"""``cascade-monitor report`` on a real Prometheus holding a known crash: a 10-minute window of one
pair written as OpenMetrics with timestamps and backfilled with ``promtool tsdb
create-blocks-from openmetrics`` (Debian's prometheus package), so every value the report reads is
known. The Prometheus source reads each quantity and the alert marks exactly; the PNG and the HTML
page (the same PNG embedded) are written; bad input (an unreachable Prometheus, an unknown exchange
or pair, an empty window, bad times, no matplotlib) is a clear message and exit code 2."""

from __future__ import annotations

import base64
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.app.cli import main
from monitor.app.report import (
    AlertMark,
    PrometheusSource,
    ReportError,
    Window,
    make_report,
    parse_duration,
    parse_time,
)
from tests.conftest import free_port
from tests.test_alertmanager import Service, binary, launch_ready

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
SPAN = 600  # the crash: 10 minutes, a sample every 5 s
PAIR = 'exchange="bybit",symbol="BTC-USDT-PERP"'
COMPONENTS = ("branching", "liq_share", "volatility")


def price(t: int) -> float:  # flat, then -6 % from minute 4 to minute 8, then flat
    return 100_000.0 - 6_000.0 * min(max((t - 240) / 240, 0.0), 1.0)


def ramp(t: int, lo: float, hi: float) -> float:  # lo until minute 3, hi from minute 8
    return lo + (hi - lo) * min(max((t - 180) / 300, 0.0), 1.0)


def openmetrics() -> str:
    """The crash as OpenMetrics text with timestamps (seconds)."""
    lines: list[str] = []

    def family(name: str, kind: str, samples: list[tuple[str, float, int]]) -> None:
        lines.append(f"# TYPE {name} {kind}")
        sample = name + ("_total" if kind == "counter" else "")
        lines.extend(f"{sample}{{{labels}}} {value!r} {T0 + t}" for labels, value, t in samples)

    ts = range(0, SPAN + 1, 5)
    family("cascade_last_price", "gauge", [(PAIR, price(t), t) for t in ts])
    family("cascade_mark_price", "gauge", [(PAIR, price(t) + 5.0, t) for t in ts])
    family("cascade_liquidation_rate_usd_per_second", "gauge",
           [(f'{PAIR},side="long",window="60s"', ramp(t, 0.0, 80_000.0), t) for t in ts]
           + [(f'{PAIR},side="short",window="60s"', 1_000.0, t) for t in ts]
           + [(f'{PAIR},side="long",window="10s"', 5.0, t) for t in ts]
           + [('exchange="binance",symbol="ETH-USDT-PERP",side="long",window="60s"', 7.0, t)
              for t in ts])  # fmt: skip
    family("cascade_cascade_score", "gauge", [(PAIR, ramp(t, 0.2, 0.85), t) for t in ts])
    family("cascade_cascade_score_component", "gauge",
           [(f'{PAIR},component="{c}"', ramp(t, 0.1 * i, 0.3 + 0.2 * i), t)
            for t in ts for i, c in enumerate(COMPONENTS)])  # fmt: skip
    family("cascade_branching_ratio", "gauge", [(PAIR, ramp(t, 0.3, 0.95), t) for t in ts])
    # the consumers' counter is created at the first transition (6 min), a second at 8 min
    alert = 'exchange="bybit",rule="cascade-risk",status="firing",severity="critical"'
    family("cascade_alerts_emitted", "counter",
           [(alert, 1.0 if t < 480 else 2.0, t) for t in ts if t >= 360])  # fmt: skip
    family("ALERTS", "gauge",
           [(f'alertname="CascadeRiskCritical",alertstate="firing",severity="critical",{PAIR}', 1.0, t)
            for t in ts if 420 <= t <= 510])  # fmt: skip
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("report")
    promtool, prom = binary("promtool"), binary("prometheus")
    (tmp / "crash.om").write_text(openmetrics())
    res = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(tmp / "crash.om"),
                          str(tmp / "tsdb")], capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    (tmp / "prometheus.yml").write_text("global: {scrape_interval: 5s}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    yield from launch_ready(
        "prometheus",
        [prom, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}"],
        tmp / "prometheus.log", url,
    )  # fmt: skip


WINDOW = Window("bybit", "BTC-USDT-PERP", T0, T0 + SPAN)


def test_the_prometheus_source_reads_every_quantity_and_the_alert_marks(
    prometheus: Service,
) -> None:
    data = PrometheusSource(prometheus.url).load(WINDOW)
    s = data.series
    assert set(s) == {"price", "mark", "liq_long", "liq_short", "score", "branching_ratio"} | {
        f"component:{c}" for c in COMPONENTS
    }
    price_at = dict(zip(s["price"].t, s["price"].v, strict=True))
    for t in (0, 240, 300, 360, 480, 600):
        assert price_at[T0 + t] == price(t)
    assert dict(zip(s["mark"].t, s["mark"].v, strict=True))[T0 + 300] == price(300) + 5
    liq = dict(zip(s["liq_long"].t, s["liq_long"].v, strict=True))
    assert liq[T0 + 480] == 80_000.0 and liq[T0 + 180] == 0.0  # the 60 s window, not the 10 s
    assert set(s["liq_short"].v) == {1_000.0}
    assert max(s["score"].v) == pytest.approx(0.85)
    assert max(s["component:volatility"].v) == pytest.approx(0.7)
    assert max(s["branching_ratio"].v) == pytest.approx(0.95)
    # step 1 s over 10 minutes: the marks fall on the samples that show them
    assert data.alerts == [
        AlertMark(T0 + 360, "cascade-risk firing (critical), any bybit pair"),
        AlertMark(T0 + 420, "CascadeRiskCritical firing"),
        AlertMark(T0 + 480, "cascade-risk firing (critical), any bybit pair"),
    ]


def test_the_report_writes_a_png_and_a_page_embedding_it(
    prometheus: Service, tmp_path: Path
) -> None:
    png, page = make_report(PrometheusSource(prometheus.url), WINDOW, tmp_path / "out" / "crash")
    assert (png.name, page.name) == ("crash.png", "crash.html")
    image = png.read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 30_000
    text = page.read_text()
    assert f"data:image/png;base64,{base64.b64encode(image).decode()}" in text
    assert "0.85 at 2023-11-14 22:21:20 UTC" in text  # the peak score, 8 min in
    assert "$80,000/s at 2023-11-14 22:21:20 UTC" in text
    assert text.count("any bybit pair") == 2 and "CascadeRiskCritical firing" in text
    assert "<script" not in text and "http" not in text.split("<body>", 1)[1].split("from ", 1)[0]


def test_the_command_writes_the_report(prometheus: Service, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "r"
    rc = main(["report", "--prometheus", prometheus.url, "--exchange", "bybit", "--symbol",
               "BTC-USDT-PERP", "--from", "2023-11-14T22:13:20Z", "--to", str(T0 + SPAN),
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert capsys.readouterr().out.split() == ["wrote", f"{out}.png", "wrote", f"{out}.html"]


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    rc = main(["report", *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and err.startswith("cascade-monitor: ")
    return err


def test_bad_input_is_a_message_and_exit_code_2(prometheus: Service, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    pair = ["--exchange", "bybit", "--symbol", "BTC-USDT-PERP", "--out", str(tmp_path / "x")]
    closed = f"http://127.0.0.1:{free_port()}"
    assert "cannot reach Prometheus at " + closed in _fails(
        ["--prometheus", closed, *pair, "--last", "30m"], capsys
    )
    url = ["--prometheus", prometheus.url]
    err = _fails([*url, "--exchange", "okx", "--symbol", "BTC-USDT-PERP", "--last", "1h"], capsys)
    assert "unknown exchange 'okx'" in err and "['binance', 'bybit']" in err
    err = _fails(
        [*url, "--exchange", "bybit", "--symbol", "DOGE-USDT-PERP", "--last", "1h"], capsys
    )
    assert "unknown pair" in err and "BTC-USDT-PERP" in err
    assert "no data for bybit BTC-USDT-PERP between 2020-01-01 00:00:00 UTC" in _fails(
        [*url, *pair, "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-01T01:00:00Z"], capsys
    )
    assert "a duration such as" in _fails([*url, *pair, "--last", "5x"], capsys)
    assert "either --last or --from/--to" in _fails([*url, *pair, "--last", "5m", "--from", "0"],
                                                     capsys)  # fmt: skip
    assert "give the window" in _fails([*url, *pair], capsys)
    assert "must end after it starts" in _fails(
        [*url, *pair, "--from", "200", "--to", "100"], capsys
    )
    assert "ISO 8601" in _fails([*url, *pair, "--from", "yesterday"], capsys)
    assert "http:// or https://" in _fails(["--prometheus", "localhost:9090", *pair, "--last", "5m"],
                                           capsys)  # fmt: skip
    assert not list(tmp_path.iterdir())  # nothing written


def test_without_matplotlib_the_report_says_which_extra_to_install(
    prometheus: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(ReportError, match=r"pip install 'cascade-monitor\[report\]'"):
        make_report(PrometheusSource(prometheus.url), WINDOW, tmp_path / "x")


def test_times_and_durations() -> None:
    assert parse_time("2023-11-14T22:13:20Z", "--from") == T0
    assert parse_time("2023-11-14T23:13:20+01:00", "--from") == T0
    assert parse_time("2023-11-14T22:13:20", "--from") == T0  # UTC when no offset is given
    assert parse_time(str(T0), "--from") == T0
    assert [parse_duration(x) for x in ("90s", "30m", "2h", "1d", "1.5h")] == [
        90, 1800, 7200, 86400, 5400]  # fmt: skip
    for bad in ("0m", "-5m", "m", "5 minutes"):
        with pytest.raises(ReportError):
            parse_duration(bad)
    with pytest.raises(ReportError):
        Window("bybit", "BTC-USDT-PERP", T0, math.nan)
