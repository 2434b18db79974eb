"""Sparkplug B (Eclipse Sparkplug 3.0) edge nodes as a source of readings.

`payload` holds the protobuf schema (the part of the specification's Payload that carries metric
values), `session` the state a host application keeps per edge node: the aliases of its birth
certificate, its sequence number and whether it is alive.
"""
