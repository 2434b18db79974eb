"""Forecasts of a plan's inputs from telemetry: models, their quantile bands, and backtests.

`profile` holds the history cleaning and the profile models, `solar` the sun and the clear sky
(pvlib; and the simulator's own geometry), `gbm` the gradient-boosted models, `pv` the
clear-sky-index PV model, `select` the per-meter choice by backtest, `backtest` the
rolling-origin evaluation.
"""
