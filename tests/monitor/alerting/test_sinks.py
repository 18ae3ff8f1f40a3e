"""Resolved sinks (monitor.alerting.sinks): a sink reads its secrets from the environment or a
file and never shows or pickles them. Their settings are tested in
tests/monitor/core/test_sink_settings.py."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from monitor.alerting.sinks import Sink, resolve_sink
from monitor.core.errors import ConfigError
from monitor.core.sink_settings import SinkConfig
from tests.monitor.alerting.helpers import KEY, TOKEN_PATH


def test_secrets_read_from_env_or_file_never_shown(tmp_path: Path) -> None:
    url = f"https://hooks.slack.com{TOKEN_PATH}"
    f = tmp_path / "url"
    f.write_text(url + "\n")
    for cfg in (SinkConfig("s", "slack", url_env="SLACK_URL"),
                SinkConfig("s", "slack", url_file=str(f))):  # fmt: skip
        sink = resolve_sink(cfg, {"SLACK_URL": url})
        assert sink.url.reveal() == url
        for shown in (repr(sink), str(sink), f"{sink.url}", repr(cfg)):
            assert "XXXXtoken" not in shown and "services" not in shown
        assert "hooks.slack.com/***" in repr(sink)
    js = resolve_sink(SinkConfig("j", "json", url="http://x/", secret_env="K"), {"K": KEY})
    assert js.key is not None and js.key.reveal() == KEY
    assert KEY not in repr(js) and KEY not in f"{js.key}" and KEY not in str(js.key)
    with pytest.raises(ConfigError) as err:
        resolve_sink(SinkConfig("j", "json", url="http://x/", secret_env="MISSING"), {})
    assert "secret_env" in str(err.value) and "MISSING" in str(err.value)
    with pytest.raises(ConfigError, match=r"url_file"):
        resolve_sink(SinkConfig("s", "slack", url_file=str(tmp_path / "nope")), {})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=r"secret_file: signing key is empty"):
        resolve_sink(SinkConfig("j", "json", url="http://x/", secret_file=str(empty)), {})


def test_sink_objects_do_not_pickle_secrets() -> None:

    js: Sink = resolve_sink(SinkConfig("j", "json", url="http://x/", secret_env="K"), {"K": KEY})
    with pytest.raises(TypeError):
        pickle.dumps(js)
