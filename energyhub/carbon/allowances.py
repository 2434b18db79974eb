"""Allowances and CCER offsets per enterprise or building and compliance year (易碳 · 融碳).

The ledger holds allocations, purchases, sales and surrenders of allowances and CCERs, and the
verified emissions of a year; each entry says who recorded it, when and why, and is corrected by
a reversal, never edited. A sale or surrender of more than is held, a CCER surrender beyond the
scheme's offset share, a price that is not CNY per tonne: each is refused naming its field, and
nothing is written. The position of a year is in carbon/position.py.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Annotated, Literal, Self

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, model_validator

from energyhub.bounds import Name
from energyhub.carbon.asset_errors import AssetInputError, UnknownEntryError
from energyhub.sites import CarbonScheme
from energyhub.store import allowances as store
from energyhub.store.allowances import EntryRow

Kind = Literal["allocation", "purchase", "sale", "surrender", "verified"]
Instrument = Literal["allowance", "ccer"]
Text = Name
"""1 to 200 characters, no control character (a NUL, or an escape sequence for a terminal)."""
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2100, 12, 31))]

PRICE_MIN_CNY_PER_T = 1.0
"""Below 1 CNY/t a figure is a price per kg (allowances trade at tens of CNY per tonne)."""
PRICE_MAX_CNY_PER_T = 2000.0
"""Above 2000 CNY/t a figure is a price per lot or in another currency's cents: no ETS trades
there (EU allowances, the dearest, are some 600-800 CNY/t)."""
VOLUME_MAX_T = 1e9
SIGN = {"allocation": 1, "purchase": 1, "sale": -1, "surrender": -1}
PRICE = re.compile(
    r"^\s*(?P<value>[0-9]+(?:\.[0-9]+)?)\s*(?:(?P<currency>[A-Za-z¥元]+)\s*)?"
    r"(?:/\s*(?P<unit>[A-Za-z0-9₂]+))?\s*$"
)


def check_price(field: str, value: float) -> float:
    """A price per tonne in CNY, refused when its size says it is in another unit."""
    if not math.isfinite(value):
        raise AssetInputError(field, f"must be a finite number of CNY per tonne, got {value:g}")
    if value < PRICE_MIN_CNY_PER_T:
        raise AssetInputError(
            field,
            f"{value:g} CNY/t is below {PRICE_MIN_CNY_PER_T:g}: a price per kg? give CNY per "
            "tonne (×1000)",
        )
    if value > PRICE_MAX_CNY_PER_T:
        raise AssetInputError(
            field,
            f"{value:g} CNY/t is above {PRICE_MAX_CNY_PER_T:g}: give CNY per tonne of CO₂, "
            "not per lot or in fen",
        )
    return value


def parse_price(field: str, text: str) -> float:
    """`85`, `85 CNY/t`, `85 元/t` or `85 CNY/tCO2` as CNY per tonne; any other unit refused."""
    match = PRICE.match(text)
    if not match:
        raise AssetInputError(field, f"expected a price such as '85 CNY/t', got {text!r}")
    currency = (match["currency"] or "CNY").upper()
    unit = (match["unit"] or "t").lower()
    if currency not in ("CNY", "RMB", "元", "¥") or unit not in ("t", "tco2", "tco2e", "tco₂"):
        raise AssetInputError(field, f"{text!r} is not in CNY per tonne: give the price in CNY/t")
    return check_price(field, float(match["value"]))


class EntryIn(BaseModel):
    """One ledger entry of an account (an enterprise or a building) and compliance year."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compliance_year: int = Field(ge=2000, le=2100)
    kind: Kind
    instrument: Instrument | None = Field(
        default=None, description="allowance or ccer; none for verified emissions."
    )
    entry_date: Day
    volume_t: float = Field(gt=0, le=VOLUME_MAX_T, description="Tonnes of CO₂(e).")
    price_cny_per_t: float | None = Field(default=None, ge=0)
    counterparty: Text | None = None
    reason: Text

    @model_validator(mode="after")
    def _complete(self) -> Self:
        trade = self.kind in ("purchase", "sale")
        if self.kind == "verified" and self.instrument is not None:
            raise ValueError("instrument must be empty for verified emissions")
        if self.kind != "verified" and self.instrument is None:
            raise ValueError(f"instrument (allowance or ccer) is needed for {_a(self.kind)}")
        if self.kind == "allocation" and self.instrument != "allowance":
            raise ValueError("instrument of an allocation must be allowance")
        if trade and self.price_cny_per_t is None:
            raise ValueError(f"price_cny_per_t is needed for {_a(self.kind)}")
        if trade and self.counterparty is None:
            raise ValueError(f"counterparty is needed for {_a(self.kind)}")
        if not trade and self.price_cny_per_t is not None:
            raise ValueError(
                f"price_cny_per_t is only for purchases and sales, not {_a(self.kind)}"
            )
        return self


def _a(kind: str) -> str:
    """`kind` with its indefinite article ("an allocation", "a sale")."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


class EntryPublic(BaseModel):
    """A ledger entry as listed, with its audit trail: who, when, why, and what reverses it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    account_id: str
    compliance_year: int
    kind: Kind
    instrument: Literal["allowance", "ccer", "emissions"]
    entry_date: date
    volume_t: float = Field(description="Negative for a reversal.")
    price_cny_per_t: float | None
    counterparty: str | None
    reverses: int | None
    reversed_by: int | None
    recorded_by: str
    recorded_at: datetime
    reason: str

    @classmethod
    def of(cls, row: EntryRow) -> EntryPublic:
        return cls.model_validate(row, from_attributes=True)


def held_t(rows: list[EntryRow], instrument: str) -> float:
    """Tonnes of an instrument held: allocations and purchases less sales and surrenders."""
    return sum(SIGN[r.kind] * r.volume_t for r in rows if r.instrument == instrument)


def surrendered_t(rows: list[EntryRow], instrument: str) -> float:
    return sum(r.volume_t for r in rows if r.instrument == instrument and r.kind == "surrender")


def verified_t(rows: list[EntryRow]) -> float | None:
    """The year's verified emissions, if an entry stands (not reversed)."""
    standing = [
        r for r in rows if r.kind == "verified" and r.reverses is None and not r.reversed_by
    ]
    return standing[-1].volume_t if standing else None


async def scheme_of(conn: AsyncConnection, account_id: str) -> CarbonScheme | None:
    """The account's trading scheme; AssetInputError unless it is an enterprise or building."""
    found = await store.account(conn, account_id)
    if found is None:
        raise AssetInputError("account", f"unknown site {account_id!r}")
    kind, scheme = found
    if kind not in ("enterprise", "building"):
        raise AssetInputError(
            "account",
            f"{account_id!r} is a {kind}: allowances are held by an enterprise or building",
        )
    return CarbonScheme.model_validate(scheme) if scheme else None


def _check_balance(rows: list[EntryRow], entry: EntryIn, scheme: CarbonScheme | None) -> None:
    instrument = entry.instrument or ""
    held = held_t(rows, instrument)
    if entry.kind in ("sale", "surrender") and entry.volume_t > held + 1e-9:
        raise AssetInputError(
            "volume_t",
            f"{entry.kind} of {entry.volume_t:g} t, {max(held, 0):g} t {instrument} held for "
            f"{entry.compliance_year}",
        )
    if entry.kind == "surrender" and instrument == "ccer":
        emitted = verified_t(rows)
        if emitted is None:
            raise AssetInputError(
                "kind", f"no verified emissions for {entry.compliance_year}: record them first"
            )
        share = scheme.offset_share if scheme else 0.0
        room = share * emitted - surrendered_t(rows, "ccer")
        if entry.volume_t > room + 1e-9:
            raise AssetInputError(
                "volume_t",
                f"CCER surrender of {entry.volume_t:g} t, the offset share {share:.0%} of "
                f"{emitted:g} t verified leaves {max(room, 0):g} t",
            )
    if entry.kind == "verified" and verified_t(rows) is not None:
        raise AssetInputError(
            "kind",
            f"{entry.compliance_year} already has verified emissions: reverse that entry first",
        )


async def add_entry(
    conn: AsyncConnection, account_id: str, entry: EntryIn, recorded_by: str
) -> int:
    """Record an entry after the balance checks, under the account's lock; returns its id."""
    if entry.price_cny_per_t is not None:
        check_price("price_cny_per_t", entry.price_cny_per_t)
    scheme = await scheme_of(conn, account_id)
    async with conn.transaction():
        await store.lock_account(conn, account_id)
        rows = await store.entries(conn, account_id, entry.compliance_year)
        _check_balance(rows, entry, scheme)
        return await store.insert_entry(
            conn,
            {
                "account_id": account_id,
                **entry.model_dump(exclude={"instrument"}),
                "instrument": entry.instrument or "emissions",
                "reverses": None,
                "recorded_by": recorded_by,
            },
        )


async def reverse_entry(
    conn: AsyncConnection, account_id: str, entry_id: int, reason: str, recorded_by: str
) -> int:
    """Cancel an entry with its negation; refused if that would leave less than 0 t held."""
    if not reason.strip():
        raise AssetInputError("reason", "say why the entry is reversed")
    async with conn.transaction():
        await store.lock_account(conn, account_id)
        original = await store.entry(conn, entry_id)
        if original is None or original.account_id != account_id:
            raise UnknownEntryError("ledger entry", entry_id)
        if original.reverses is not None:
            raise AssetInputError("entry", f"entry {entry_id} is itself a reversal")
        if original.reversed_by is not None:
            raise AssetInputError(
                "entry", f"entry {entry_id} is already reversed by {original.reversed_by}"
            )
        rows = await store.entries(conn, account_id, original.compliance_year)
        if original.kind in SIGN:
            left = held_t(rows, original.instrument) - SIGN[original.kind] * original.volume_t
            if left < -1e-9:
                raise AssetInputError(
                    "entry",
                    f"reversing entry {entry_id} would leave {left:g} t {original.instrument} "
                    f"held for {original.compliance_year}",
                )
        return await store.insert_entry(
            conn,
            {
                "account_id": account_id,
                "compliance_year": original.compliance_year,
                "kind": original.kind,
                "instrument": original.instrument,
                "entry_date": original.entry_date,
                "volume_t": -original.volume_t,
                "price_cny_per_t": original.price_cny_per_t,
                "counterparty": original.counterparty,
                "reverses": entry_id,
                "recorded_by": recorded_by,
                "reason": reason.strip(),
            },
        )


async def ledger_entries(
    conn: AsyncConnection, account_id: str, year: int | None
) -> list[EntryPublic]:
    await scheme_of(conn, account_id)
    return [EntryPublic.of(row) for row in await store.entries(conn, account_id, year)]
