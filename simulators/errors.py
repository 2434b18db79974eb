"""Errors the simulators raise on purpose; all are EnergyhubErrors, so the CLI exits 2 on them."""

from __future__ import annotations

from energyhub.errors import EnergyhubError


class SimulatorInputError(EnergyhubError):
    """An argument, a site file's meter or a feed cannot be simulated as given."""


class FaultSpecError(SimulatorInputError):
    """A `--faults` specification is malformed; the message names the item and what is expected."""


class RecordFileError(SimulatorInputError):
    """A record file or fault log cannot be read, or a line of it is not a recorded message."""


class BrokerError(EnergyhubError):
    """The MQTT broker cannot be reached, refused the connection or closed it."""
