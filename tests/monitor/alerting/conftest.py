"""Fixtures of the alerting tests: a started local receiver and the sinks' HTTP session, both
closed after the test (the receiver and the helpers themselves: ``helpers.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.alerting.courier import open_session
from tests.monitor.alerting.helpers import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = open_session()
    yield s
    await s.close()
