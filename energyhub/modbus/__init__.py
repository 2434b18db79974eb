"""Modbus TCP meters behind gateways: register maps, the poller and its block planning.

The poller reads registers and publishes what it read as gateway frames of the MQTT contract
(`{prefix}/{park}/{site}`), so Modbus readings take the same validation, plausibility checks,
rejects, batching and COPY as every other reading, and the broker holds them while the database
is away.
"""
