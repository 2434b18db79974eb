"""Errors of the carbon-asset ledgers: each names the one field at fault (CLI exit 2, API 422)."""

from __future__ import annotations

from energyhub.carbon.errors import CarbonError


class AssetInputError(CarbonError):
    """A certificate, contract, retirement, ledger entry or price that is refused; nothing is
    written. `field` is the input's name (`serials`, `period`, `volume_t`, ...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")


class UnknownEntryError(CarbonError):
    """No instrument or ledger entry with this id in the caller's scope."""

    def __init__(self, what: str, entry_id: int) -> None:
        self.what = what
        self.entry_id = entry_id
        super().__init__(f"no {what} {entry_id}")
