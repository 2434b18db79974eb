"""Field hardware stand-ins: meters, sensors and devices that publish over MQTT."""
