"""consumers/models/feedback.py: the structural feedback ratio, hand-computed."""

from __future__ import annotations

import math

import pytest

from consumers.models.feedback import feedback_ratio


def test_feedback_ratio() -> None:
    # density $1e12 per unit log move = $1e10 per 1%; a 1% move triggers $1e10, sqrt = 1e5
    assert math.isclose(feedback_ratio(1e-6, 1e12, 0.01), 10.0, rel_tol=1e-12)
    assert feedback_ratio(1e-6, -5.0, 0.01) == 0.0
    with pytest.raises(ValueError, match="move"):
        feedback_ratio(1e-6, 1e12, 0.0)
