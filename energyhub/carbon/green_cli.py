"""`energyhub carbon green …`: register green certificates and contracts, retire them, list them."""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from psycopg import AsyncConnection

from energyhub.carbon.asset_errors import parse_input
from energyhub.carbon.instruments import (
    CertificateIn,
    ContractIn,
    RetirementIn,
    add_certificates,
    add_contract,
    instrument_list,
    retire,
)
from energyhub.cli_support import (
    console,
    free_text,
    handles_errors,
    require_db_url,
    run_async,
    settings_or_exit,
)
from energyhub.store.db import connect, installed_backend
from energyhub.store.migrations import require_schema

green_app: typer.Typer = typer.Typer(
    help="Green certificates (绿证) and green-power contracts: register, retire, list.",
    no_args_is_help=True,
)

T = TypeVar("T")

Site = Annotated[str, typer.Option("--site", help="Site that holds the instrument.")]
Registry = Annotated[str, typer.Option("--registry", help="Issuing registry.")]
Project = Annotated[str, typer.Option("--project", help="Generating project.")]
Technology = Annotated[str, typer.Option("--technology", help="wind, solar, hydro, ...")]
Location = Annotated[str, typer.Option("--location", help="Where the project is.")]
Vintage = Annotated[int, typer.Option("--vintage", help="Year of generation.")]
Reason = Annotated[str, typer.Option("--reason", help="Why: purchase order, approval, ...")]
By = Annotated[
    str | None,
    typer.Option("--by", callback=free_text, help="Who records the entry (default: the OS user)."),
]


def _who(by: str | None) -> str:
    return by or getpass.getuser()


def _run(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    settings = settings_or_exit()
    url = require_db_url(settings)

    async def run() -> T:
        async with connect(url, settings.db_connect_timeout_s) as conn:
            await require_schema(conn)
            return await work(conn)

    return run_async(run())


def _serials(text: str) -> dict[str, Any]:
    first, sep, last = text.partition("-")
    return {"serial_first": first.strip(), "serial_last": (last if sep else first).strip()}


@green_app.command("add-certificates")
@handles_errors
def add_certificates_command(
    site: Site,
    serials: Annotated[
        str, typer.Option("--serials", help="FIRST-LAST, inclusive; one certificate per MWh.")
    ],
    project: Project,
    technology: Technology,
    location: Location,
    vintage: Vintage,
    reason: Reason,
    registry: Registry = "GEC",
    by: By = None,
) -> None:
    """Register a block of green certificates held by a site."""
    block = parse_input(
        CertificateIn,
        {
            "registry": registry,
            "project": project,
            "technology": technology,
            "location": location,
            "vintage": vintage,
            "reason": reason,
            **_serials(serials),
        },
    )
    done = _run(lambda conn: add_certificates(conn, site, block, _who(by)))
    console.print(f"instrument {done}: {block.mwh} certificates ({block.mwh} MWh) held by {site}")


@green_app.command("add-contract")
@handles_errors
def add_contract_command(
    site: Site,
    mwh: Annotated[float, typer.Option("--mwh", help="MWh delivered under the contract.")],
    supplier_factor: Annotated[
        float, typer.Option("--supplier-kg-per-kwh", help="The supplier's emission factor.")
    ],
    delivery_start: Annotated[str, typer.Option("--from", help="First delivery day, YYYY-MM-DD.")],
    delivery_end: Annotated[str, typer.Option("--to", help="Last delivery day, YYYY-MM-DD.")],
    project: Project,
    technology: Technology,
    location: Location,
    vintage: Vintage,
    reason: Reason,
    registry: Annotated[
        str, typer.Option("--registry", help="Trading centre or contract register.")
    ] = "contract",
    by: By = None,
) -> None:
    """Register a green-power contract held by a site."""
    contract = parse_input(
        ContractIn,
        {
            "registry": registry,
            "project": project,
            "technology": technology,
            "location": location,
            "vintage": vintage,
            "reason": reason,
            "mwh": mwh,
            "supplier_kg_per_kwh": supplier_factor,
            "delivery_start": delivery_start,
            "delivery_end": delivery_end,
        },
    )
    done = _run(lambda conn: add_contract(conn, site, contract, _who(by)))
    console.print(f"instrument {done}: contract for {contract.mwh:g} MWh held by {site}")


@green_app.command("retire")
@handles_errors
def retire_command(
    instrument: Annotated[int, typer.Argument(help="Instrument id (`carbon green list`).")],
    site: Annotated[str, typer.Option("--site", help="Site whose electricity it covers.")],
    period: Annotated[str, typer.Option("--period", help="YYYY, YYYY-MM or YYYY-MM-DD.")],
    reason: Reason,
    serials: Annotated[
        str | None, typer.Option("--serials", help="FIRST-LAST; default: the whole block.")
    ] = None,
    mwh: Annotated[
        float | None, typer.Option("--mwh", help="Contract MWh to claim; default: what is left.")
    ] = None,
    by: By = None,
) -> None:
    """Retire certificates (or claim contract MWh) for a site and period: once, for good."""
    values: dict[str, Any] = {
        "instrument_id": instrument,
        "site_id": site,
        "period": period,
        "reason": reason,
        "mwh": mwh,
    }
    retirement = parse_input(RetirementIn, values | (_serials(serials) if serials else {}))

    async def work(conn: AsyncConnection) -> int:
        return await retire(conn, await installed_backend(conn), retirement, _who(by))

    done = _run(work)
    console.print(f"retirement {done}: instrument {instrument} for {site}, {period}")


@green_app.command("list")
@handles_errors
def list_command(
    site: Annotated[str, typer.Option("--site", help="Site; its parts' instruments too.")],
) -> None:
    """The instruments a site and its parts hold, with what is retired of each (JSON)."""
    rows = _run(lambda conn: instrument_list(conn, site))
    typer.echo(json.dumps([row.model_dump(mode="json") for row in rows], indent=2))
