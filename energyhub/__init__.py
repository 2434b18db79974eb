"""energyhub: integrated energy management telemetry for a science park and its city."""

__version__ = "0.1.0"
