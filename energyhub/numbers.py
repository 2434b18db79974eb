"""Figures as the terminal prints them: thousands separated, a true minus sign (U+2212, as the
verdicts and the web pages print it), and never −0 for a value that rounds to zero."""

from __future__ import annotations

import math

MINUS = "\N{MINUS SIGN}"


def figure(value: float, decimals: int = 1, *, signed: bool = False) -> str:
    """`12,345.6`, `−61.9`, `0.0` for −0.04; `signed`: `+1.2`, `−1.2`, `0.0`."""
    rounded = round(value, decimals) or 0.0  # −0.0 is falsy: it prints as 0
    text = f"{rounded:{'+' if signed and rounded else ''},.{decimals}f}"
    return text.replace("-", MINUS)


def percent(value: float, decimals: int = 1) -> str:
    """A share as a signed percentage: `+2.7%`, `−33.3%`, `0.0%`."""
    return figure(value * 100, decimals, signed=True) + "%"


def coverage_percent(share: float) -> str:
    """A coverage share to 0.1 %, rounded down: data with a missing interval never reads 100.0%
    (`99.9%` for 0.99955)."""
    return f"{math.floor(share * 1000) / 10:.1f}%"


def number(value: float | None, decimals: int = 1) -> str:
    """`figure`, and `—` for no value (the web pages' `number` filter)."""
    return "—" if value is None else figure(value, decimals)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 park`, `2 parks`, `1,200 meters`: a count with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
