"""The `energyhub` command: one table of commands; each imports its module only when it runs.

`energyhub --help` lists the table without importing any command, and a process runs only what
its command imports (an ingest worker carries no API, SciPy or optimizer). To add a command, add
one line to COMMANDS: its name, `module:attribute` (a command function or a typer.Typer of
sub-commands) and the first line of its help, which tests/test_cli_imports.py checks against the
command's own. The helpers the commands share are in energyhub.cli_support.
"""

from __future__ import annotations

import sys

from energyhub.cli_lazy import LazyCommand, LazyGroup, OneLineTyper, lazy_group

ROLES_PANEL = "Long-running roles"
"""`energyhub --help` groups the commands a deployment runs until stopped under this heading;
tests/deploy/test_roles.py requires each of them in docker-compose.yml."""

COMMANDS = (  # in the order `energyhub --help` lists them
    LazyCommand(
        "demo",
        "energyhub.demo.cli:demo_command",
        # with the docstring's line breaks, as --help shows them
        "The whole system on embedded defaults (private PostgreSQL and Mosquitto unless\n"
        "ENERGYHUB_DB_URL / ENERGYHUB_MQTT_URL are set): simulate, ingest, forecast, plan, "
        "schedule,\nsummarize, then serve the API until Ctrl-C.",
    ),
    LazyCommand(
        "plan",
        "energyhub.optimize.cli:plan_command",
        "Schedule a building, park or city's electricity, heat, cooling and gas at least cost.",
    ),
    LazyCommand(
        "simulate",
        "simulators.cli:simulate_command",
        "Publish a virtual park's meters, sensors and devices; follow setpoints it receives.",
    ),
    LazyCommand(
        "record",
        "simulators.cli:record_command",
        "Record MQTT traffic (topic, payload, receive time) to JSON Lines; Ctrl-C stops.",
    ),
    LazyCommand(
        "replay",
        "simulators.cli:replay_command",
        "Republish a recording (or measured feeds) with faults injected and logged.",
    ),
    LazyCommand(
        "ingest",
        "energyhub.ingest.cli:ingest_command",
        "Subscribe to the MQTT contract and store readings; Ctrl-C or SIGTERM stops cleanly.",
        ROLES_PANEL,
    ),
    LazyCommand(
        "modbus",
        "energyhub.modbus.cli:modbus_command",
        "Poll the site's Modbus TCP gateways; publish their meters' readings as MQTT frames.",
        ROLES_PANEL,
    ),
    LazyCommand(
        "devices",
        "energyhub.modbus.cli:devices_command",
        "Field devices (Modbus gateways, Sparkplug nodes and devices): which answer, since when.",
    ),
    LazyCommand(
        "api",
        "energyhub.api.cli:api_command",
        "Serve the HTTP API (sites, load, meters, plans, health, /metrics) with uvicorn.",
        ROLES_PANEL,
    ),
    LazyCommand(
        "scheduler",
        "energyhub.scheduler.cli:scheduler_command",
        "Re-plan every period, activate approved plans, send setpoints; Ctrl-C or SIGTERM stops.",
        ROLES_PANEL,
    ),
    LazyCommand(
        "alerts",
        "energyhub.alerts.cli:alerts_command",
        "Watch meters, loads, forecasts, batteries and the ingest; open, close and notify alerts.",
        ROLES_PANEL,
    ),
    LazyCommand(
        "sites",
        "energyhub.sites_cli:sites_app",
        "Site files: validate, print, export the schema, load.",
    ),
    LazyCommand("db", "energyhub.store.cli:db_app", "The database: migrate and maintain."),
    LazyCommand(
        "keys", "energyhub.api.cli:keys_app", "API keys: create (shown once), list, revoke."
    ),
    LazyCommand(
        "plans", "energyhub.plans.cli:plans_app", "Stored plans: list, show, approve, reject."
    ),
    LazyCommand(
        "carbon",
        "energyhub.carbon.cli:carbon_app",
        "Carbon accounting: reports per site, hourly grid intensity series.",
    ),
    LazyCommand(
        "forecast",
        "energyhub.forecast.cli:forecast_app",
        "Forecasts: backtest them on stored meters; import weather forecasts.",
    ),
    LazyCommand(
        "grafana",
        "energyhub.grafana.cli:grafana_app",
        "Grafana: write the dashboards/ files, or push them to a running Grafana.",
    ),
)

app = OneLineTyper(
    name="energyhub",
    help="Integrated energy management telemetry: ingest, optimize, account for carbon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=lazy_group(COMMANDS),
)


@app.callback()
def settings_first() -> None:
    """Every command starts by reading the settings: a bad ENERGYHUB_* value is one line naming
    it, and exit status 2, before the command does anything (help is shown whatever they are)."""
    if not {"--help", "-h"} & set(sys.argv[1:]):
        from energyhub.cli_support import settings_or_exit

        settings_or_exit()


def loaded_commands() -> LazyGroup:
    """The top-level click group with every command imported: for the generated docs and tests."""
    import typer.main

    root = typer.main.get_command(app)
    if not isinstance(root, LazyGroup):
        raise TypeError(f"the energyhub app is a {type(root).__name__}, not a LazyGroup")
    root.load_all()
    return root
