"""The risk models of docs/risk-models.md §1-§7, one module per model, each named after what it computes.
Pure: numpy and numba only (no Kafka, no Prometheus).

Kernels (``jit``: the conventions, ``njit(cache=True)``) and the state that runs them:

* ``screening``: which input rows the kernels may use;
* ``flow`` (s1): decayed liquidation and traded-notional rates, imbalance, liquidation share;
* ``volatility`` (s5): last price and the EWMA volatility;
* ``baseline`` (s1): the liquidation rate's slow baseline and z-score;
* ``saturation`` (s1): how saturated a sampled liquidation feed is;
* ``kyle_lambda`` (s3): Kyle's lambda and the Amihud ratio;
* ``feedback`` (s3): the structural feedback ratio n_struct;
* ``vpin`` (s4): VPIN over equal-volume buckets;
* ``bipower`` (s5): bipower variation, realized variance, the jump share;
* ``drawdown`` (s5): drawdown and drawup from a decayed high and low;
* ``microstructure``: the parameters, state and read-out of the six models above it runs;
* ``hawkes`` (s2): the Hawkes model's state, with ``hawkes_intensity`` (online, per event),
  ``hawkes_fit`` (the rolling-window refit) and ``hawkes_likelihood`` (exact LL and BFGS);
* ``sampled_hawkes`` (s2.5): the branching ratio the monitor exports, a Hawkes model fitted to 1 s
  bins as the feed's coverage reveals them, with its interval; ``sampled_likelihood`` (its
  log-posterior, BFGS, Laplace) and ``sampled_series`` (binning from the Hawkes buffer, the
  per-pair state, the refit per tick);
* ``liquidation_map`` (s6): the map's state, with ``liquidation_price`` (tiered isolated margin),
  ``liquidation_map_update`` (deposits, removals, decay) and ``margin_stress`` (read-outs);
* ``score`` (s7): the composite score and the rank histories;
* ``bundle``: every model behind one interface for ``consumers.state.RiskState``.
"""
