"""Transitional: the Hawkes model moved to ``consumers.models.hawkes`` (its state) and
``consumers.models.hawkes_intensity`` / ``hawkes_fit`` / ``hawkes_likelihood`` (its kernels). This
module only re-exports the state's names for code written before the move
(``benchmarks/bench_sampled_hawkes.py``); delete it once that imports from
``consumers.models.hawkes``."""

from __future__ import annotations

from consumers.models.hawkes import HawkesParams, HawkesReadout, HawkesState

__all__ = ["HawkesParams", "HawkesReadout", "HawkesState"]
