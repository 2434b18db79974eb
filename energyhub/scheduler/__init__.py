"""The scheduler: forecasts from telemetry, receding-horizon re-plans, setpoints over MQTT."""
