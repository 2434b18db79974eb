"""Errors of the carbon-asset ledgers: each names the one field at fault (CLI exit 2, API 422)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from energyhub.carbon.errors import CarbonError

M = TypeVar("M", bound=BaseModel)


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


def parse_input(model: type[M], values: dict[str, Any]) -> M:
    """`model(**values)` with the first problem as an AssetInputError naming its field."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        first_word = message.split(" ", 1)[0]
        field = ".".join(str(part) for part in error["loc"]) or (
            first_word if first_word in model.model_fields else model.__name__
        )
        if error["type"] not in ("value_error", "assertion_error"):
            message += f", got {error.get('input')!r}"
        raise AssetInputError(field, message) from None
