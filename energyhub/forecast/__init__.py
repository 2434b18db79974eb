"""Forecasts of a plan's inputs from telemetry: models, their quantile bands, and backtests.

`profile` holds the history cleaning and the profile models, `solar` the clear-sky geometry the
simulator shares, `gbm` the gradient-boosted demand model, `pv` the clear-sky-index PV model,
`select` the per-meter choice by backtest, `backtest` the rolling-origin evaluation.
"""
