"""Errors of the ingest package."""

from __future__ import annotations

from energyhub.errors import EnergyhubError


class IngestError(EnergyhubError):
    """Base of ingest errors."""


class PayloadError(IngestError):
    """A message (or one reading of it) breaks the MQTT contract; the text is the reject reason.

    `kind` is a short, fixed category for metrics (`not_json`, `bad_ts`, `unknown_device`, ...).
    """

    def __init__(self, reason: str, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.kind = kind


class BrokerUnavailableError(IngestError):
    """The MQTT broker cannot be reached or refused the connection."""
