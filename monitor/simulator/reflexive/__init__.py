"""A reflexive market for the simulator: leveraged positions whose forced closes move the price.

The scripted ``monitor.simulator.scenario`` plays a price path that liquidations never touch. This
package closes the loop: noise and news move a price, the price crosses liquidation levels of a
book of leveraged positions, the forced orders move the price further (square-root impact with
decay), and that can cross more levels: a cascade. Every scenario comes with its ground truth
(cascade onset, peak minute, forced notional, the endogenous share) and is returned as the existing
``Scenario`` type, so every venue feed renders it; ``render`` writes it as recordings.

Modules, from the bottom: ``margin`` (liquidation prices, tiered maintenance margin), ``book``
(the positions), ``exogenous`` (news shocks and diffusion), ``flow`` (noise taker trades),
``market`` (the step loop: impact, liquidation engine, counterfactual), ``truth`` (ground truth),
``listing`` (which venue lists which symbol), ``assemble`` (market output -> ``Scenario`` events
per venue), ``families`` (scenario families), ``plans`` (each venue's connections and subscribe
requests) and ``render`` (recordings). docs/scenarios.md describes the model.
Pure modules: numpy and the standard library; the package imports nothing here on purpose.
"""
