"""One Settings class: `ENERGYHUB_*` environment variables over an optional TOML file."""

from __future__ import annotations

import codecs
import os
import re
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from energyhub.errors import ConfigError, not_utf8
from energyhub.mqtt import check_client_id_prefix, check_topic_prefix
from energyhub.userfiles import DEFAULT_MAX_FILE_BYTES, size_text

CONFIG_FILE_VARIABLE = "ENERGYHUB_CONFIG"
"""Environment variable naming the optional TOML settings file (keys as the field names)."""

EXAMPLE_SITE_FILE = Path(__file__).resolve().parent.parent / "examples" / "expo-park.yaml"


class SettingsFile(TomlConfigSettingsSource):
    """The TOML file of ENERGYHUB_CONFIG. Its keys are matched without case, so `api_port` and
    `API_PORT` in one file are one setting twice, of which pydantic-settings kept one silently:
    they are refused, named (a ValueError, which `load_settings` words with the file's name)."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        data = super()._read_file(file_path)
        first_of: dict[str, str] = {}
        for key in data:
            first = first_of.setdefault(key.lower(), key)
            if first != key:
                raise ValueError(
                    f"{first} and {key} are the same setting (names are not case-sensitive): "
                    "keep one"
                )
        return data


class Settings(BaseSettings):
    """Everything energyhub reads from its environment; each field is `ENERGYHUB_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="ENERGYHUB_", extra="forbid", allow_inf_nan=False)

    db_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:port/db). Unset: `energyhub demo` "
        "starts a private embedded PostgreSQL; other commands refuse to run.",
    )
    db_pool_min: int = Field(
        default=1, ge=1, le=1000, description="Connections the pool keeps open."
    )
    db_pool_max: int = Field(
        default=8, ge=1, le=1000, description="Most connections the pool opens."
    )
    db_connect_timeout_s: float = Field(
        default=10.0, gt=0, le=3600, description="Seconds to wait for a database connection."
    )
    timescaledb: Literal["auto", "require", "off"] = Field(
        default="auto",
        description="Storage path: `auto` uses TimescaleDB when the extension is available, "
        "`require` fails without it, `off` always uses plain PostgreSQL partitions.",
    )
    retention_days: int = Field(
        default=730,
        ge=1,
        le=36_500,
        description="Readings older than this many days are dropped.",
    )
    partitions_ahead_days: int = Field(
        default=7,
        ge=1,
        le=366,
        description="Plain PostgreSQL: daily partitions created ahead of today.",
    )
    compress_after_days: int = Field(
        default=7,
        ge=1,
        le=36_500,
        description="TimescaleDB: chunks older than this are compressed.",
    )
    mqtt_url: str | None = Field(
        default=None,
        description="MQTT broker URL (mqtt://user:pass@host:1883). Unset: `energyhub demo` starts "
        "a private Mosquitto; `ingest` refuses to run.",
    )
    mqtt_topic_prefix: str = Field(
        default="energyhub", description="First topic level of the energyhub MQTT contract."
    )
    mqtt_client_id_prefix: str = Field(
        default="energyhub",
        description="Start of every MQTT client id (ingest worker i is `<prefix>-ingest-<i>`) "
        "and the ingest's shared-subscription group: no '/', '+', '#' or control character.",
    )
    ingest_subscription: Literal["partitioned", "shared"] = Field(
        default="partitioned",
        description="How several ingest workers split the stream: `partitioned` (plain "
        "subscriptions to each worker's sites, kept across a Mosquitto restart) or `shared` "
        "(MQTT v5 shared subscription, for brokers that persist it).",
    )
    ingest_batch_rows: int = Field(
        default=5000,
        ge=1,
        le=1_000_000,
        description="Readings per write: a batch is flushed when this full.",
    )
    ingest_flush_s: float = Field(
        default=0.25,
        gt=0,
        le=3600,
        description="Seconds after which a batch is flushed however small.",
    )
    ingest_receive_maximum: int = Field(
        default=20000,
        ge=10,
        le=65535,
        description="Unacknowledged QoS 1 messages the broker may send each worker (MQTT v5 "
        "Receive Maximum): bounds a worker's memory; more waits at the broker.",
    )
    ingest_session_expiry_s: int = Field(
        default=86400,
        ge=0,
        le=2**32 - 1,
        description="How long the broker keeps a stopped worker's session and its backlog.",
    )
    ingest_max_future_skew_s: float = Field(
        default=300,
        ge=0,
        le=31_622_400,
        description="Readings further in the future than this are rejected.",
    )
    ingest_max_payload_bytes: int = Field(
        default=262144,
        ge=64,
        le=268_435_455,
        description="Messages larger than this are rejected whole.",
    )
    ingest_reject_payload_chars: int = Field(
        default=2000,
        ge=0,
        le=1_000_000,
        description="A rejected payload is stored truncated to this length.",
    )
    ingest_metrics_port: int = Field(
        default=9108,
        ge=0,
        le=65535,
        description="Prometheus metrics port of ingest worker 0 (worker i uses port + i; 0: off).",
    )
    ingest_metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the ingest metrics listen on (0.0.0.0 for a Prometheus elsewhere).",
    )
    ingest_log_every_s: float = Field(
        default=30, gt=0, le=86_400, description="Seconds between ingest summary lines in the log."
    )
    rollup_refresh_s: float = Field(
        default=10,
        gt=0,
        le=86_400,
        description="Seconds between refreshes of the rollup buckets the ingest wrote to.",
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="dask.distributed scheduler address (tcp://host:8786) that decomposed park and "
        "city plans submit their subproblems to. Unset: a local process pool.",
    )
    site_file: Path = Field(
        default=EXAMPLE_SITE_FILE, description="Site file the demo (and default commands) load."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Logging level."
    )
    api_host: str = Field(default="127.0.0.1", description="Address `energyhub api` listens on.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of `energyhub api`.")
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES,
        ge=1024,
        le=64 * 1024**3,
        description="Largest file a command reads (site file, CSV, recording); more is refused "
        "after reading one byte past it, never read whole.",
    )
    plan_max_asset_steps: int = Field(
        # a model holds ~2-3 KB per asset-step while HiGHS builds and presolves it: a park of 10
        # buildings at 10,000 steps (500,000) took 1.6 GB in its first 20 s, one of 30 buildings
        # (1,580,000) 3.0 GB (2026-12-07, two cores under load); the API's 10,000 steps of a
        # whole park or city could otherwise take many GB
        default=1_000_000,
        ge=1000,
        le=1_000_000_000,
        description="Largest plan the API and `energyhub plan` take, in asset-steps: steps × "
        "(nodes + assets) summed over its parks (memory grows ~2-3 KB per asset-step); more is "
        "refused before it is solved (a 422 naming inputs.ts, exit status 2).",
    )
    api_max_points: int = Field(
        default=10000,
        ge=10,
        le=10_000_000,
        description="Most rows (time steps or readings) one API response holds; more is a 422 "
        "that says how to page.",
    )
    api_max_range_days: float = Field(
        default=366,
        gt=0,
        le=36_500,
        description="Longest start..end range one API request may ask for.",
    )
    api_cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (CORS); none by default.",
    )
    api_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest request body the API reads; more is a 413 (before it is read).",
    )
    api_max_query_bytes: int = Field(
        default=8192,
        ge=256,
        le=1024**2,
        description="Longest query string the API reads; more is a 414.",
    )
    api_load_cache_s: float = Field(
        default=1.0,
        ge=0,
        le=86_400,
        description="Seconds a /sites/{id}/load answer is reused for the same request (per API "
        "process; key and scope still checked each time); 0: off.",
    )
    api_access_cache_entries: int = Field(
        default=10_000,
        ge=0,
        le=10_000_000,
        description="Key and site or meter scope answers each API process keeps while it hears "
        "PostgreSQL's notice of every key, site and meter change (LISTEN); 0: every request "
        "looks its key up in the database.",
    )
    api_plan_workers: int = Field(
        default=1, ge=1, le=16, description="Plans the API solves at once (more wait their turn)."
    )
    api_plan_time_limit_s: float = Field(
        default=60,
        gt=0,
        le=86_400,
        description="Solver time limit of a plan created through the API.",
    )
    scheduler_sites: list[str] = Field(
        default_factory=list,
        description="Parks (planned at park level) and buildings (building level) the scheduler "
        "plans and dispatches; none: every park of the site file. They must not overlap.",
    )
    scheduler_period_min: float = Field(
        default=15, gt=0, le=1440, description="Minutes between re-plans of each scheduled site."
    )
    scheduler_horizon_h: float = Field(
        default=24, gt=0, le=168, description="Hours each re-plan covers from its first step."
    )
    scheduler_step: Literal["5m", "15m", "1h"] = Field(
        default="15m", description="Plan step; setpoints go out at the start of each."
    )
    scheduler_history_days: int = Field(
        default=28, ge=2, le=366, description="Days of telemetry the forecasts learn from."
    )
    scheduler_soc_max_age_min: float = Field(
        default=30,
        gt=0,
        le=10_080,
        description="A storage SOC reading older than this is stale: the plan starts from the "
        "site file's soc_initial and carries a warning.",
    )
    scheduler_forecast_max_gap_min: float = Field(
        default=60,
        ge=0,
        le=10_080,
        description="Gaps in a meter's history up to this long are interpolated.",
    )
    scheduler_forecast_max_silence_h: float = Field(
        default=6,
        gt=0,
        le=8784,
        description="A demand meter silent longer than this stops its site's re-plans (the "
        "failed plan names the meter).",
    )
    scheduler_latitude_deg: float = Field(
        default=31.23,
        ge=-90,
        le=90,
        description="Site latitude for the clear-sky PV forecast where the site file gives no "
        "location.",
    )
    scheduler_longitude_deg: float = Field(
        default=121.47,
        ge=-180,
        le=180,
        description="Site longitude for the PV forecast where the site file gives no location.",
    )
    scheduler_time_limit_s: float = Field(
        default=30, gt=0, le=86_400, description="Solver time limit of a scheduler re-plan."
    )
    scheduler_intraday_correction: bool = Field(
        default=True,
        description="Re-plans move the rest of the day's demand and PV forecast by the error "
        "they have made so far today, with a band narrowed where that error explains the next "
        "hours (learnt per meter; docs/forecasting.md#intraday). false: every "
        "re-plan uses the day-ahead forecast and band.",
    )
    scheduler_measured_margin: bool = Field(
        default=True,
        description="Re-plans keep at least the P90 of the connection's own measured import "
        "error (metered − planned import over the steps its plans controlled) under the billed "
        "peak, where it exceeds the forecast bands' margin (docs/billing-and-savings.md"
        "#a-margin-for-forecast-error-under-the-billed-peak). false: the bands' margin alone.",
    )
    scheduler_measured_margin_days: float = Field(
        default=14,
        gt=0,
        le=366,
        description="Days before a re-plan whose controlled steps the measured margin is taken "
        "from.",
    )
    scheduler_measured_margin_min_steps: int = Field(
        default=48,
        ge=1,
        le=1_000_000,
        description="Controlled steps the measured margin needs; with fewer the bands' margin "
        "stands and the plan carries a warning.",
    )
    scheduler_demand_target: bool = Field(
        default=True,
        description="Under monthly demand billing, once a local day each scheduled site's "
        "lowest peak over the coming days is estimated (the same model on an hourly forecast) "
        "and re-plans take import up to max(month-to-date peak, that target) as free of demand "
        "charge, so no day shaves below what the month will reach anyway "
        "(docs/billing-and-savings.md#the-months-demand-target). false: the month-to-date peak "
        "alone.",
    )
    scheduler_demand_target_days: int = Field(
        default=7,
        ge=1,
        le=31,
        description="Days ahead the demand target is planned over (never past the month's end).",
    )
    scheduler_peak_reserve: bool = Field(
        default=True,
        description="Re-plans keep the P99 of the connection's measured import error covered "
        "by room under the billed peak plus what the local controller can take off the import "
        "(batteries' charge and energy, electrolysis, CHPs; docs/scheduler.md#peak-reserve). "
        "Needs the measured margin. false: no reserve.",
    )
    scheduler_peak_guard: bool = Field(
        default=True,
        description="Before each step's setpoints go out, hold the connection's import at the "
        "month's billed peak when metered demand runs above plan: cut battery charging, "
        "electrolysis and stores' charging, raise battery discharge and CHP output "
        "(docs/scheduler.md#peak-guard). false: every step's setpoints as planned.",
    )
    scheduler_peak_guard_headroom_kw: float = Field(
        default=0,
        ge=0,
        le=1e9,
        description="kW the peak guard keeps below the billed peak (room for the error of its "
        "one-step estimate).",
    )
    scheduler_import_limit: bool = Field(
        default=True,
        description="With the peak guard on, send its limit with the setpoints of batteries, "
        "electrolyzers, heat and cold stores, their heat pumps and chillers and CHPs as "
        "`import_limit_kw`, so the site's local controller holds the connection's import "
        "under it between steps (docs/scheduler.md#import-limit). false: no limit is sent.",
    )
    scheduler_publish_timeout_s: float = Field(
        default=10,
        gt=0,
        le=3600,
        description="Seconds to wait for the broker's PUBACK of a setpoint.",
    )

    alerts_tick_s: float = Field(
        default=5, gt=0, le=3600, description="Seconds between alert evaluations."
    )
    alerts_reload_s: float = Field(
        default=30,
        gt=0,
        le=86_400,
        description="Seconds between checks for alert rules edited in the API.",
    )
    alerts_rollup_grace_s: float = Field(
        default=30,
        ge=0,
        le=86_400,
        description="Seconds after a 15-minute bucket ends before the night-load and forecast "
        "rules read its rollup (plain PostgreSQL refreshes rollups every ROLLUP_REFRESH_S).",
    )
    alerts_webhook_url: str | None = Field(
        default=None, description="URL that receives each opened and closed alert as a JSON POST."
    )
    alerts_webhook_secret: str | None = Field(
        default=None,
        description="Shared secret of the webhook's X-Energyhub-Signature (HMAC-SHA256 of the "
        "body); required with ALERTS_WEBHOOK_URL.",
    )
    alerts_webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per webhook delivery (5xx, 429, network errors)."
    )
    alerts_webhook_backoff_s: float = Field(
        default=1,
        ge=0,
        le=3600,
        description="Wait before the 2nd webhook try; doubles with each retry.",
    )
    alerts_webhook_timeout_s: float = Field(
        default=10, gt=0, le=3600, description="Seconds one webhook request may take."
    )

    @field_validator("db_url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        return check_url(url, POSTGRES_URL) if url else None

    @field_validator("db_pool_max")
    @classmethod
    def _pool_holds_its_minimum(cls, most: int, info: ValidationInfo) -> int:
        least = info.data.get("db_pool_min")
        if least is not None and most < least:
            raise ValueError(
                f"must be ≥ ENERGYHUB_DB_POOL_MIN ({least}), the connections kept open"
            )
        return most

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, url: str | None) -> str | None:
        return check_url(url, MQTT_URL) if url else None

    @field_validator("mqtt_topic_prefix")
    @classmethod
    def _topic_prefix(cls, prefix: str) -> str:
        return check_topic_prefix(prefix)

    @field_validator("mqtt_client_id_prefix")
    @classmethod
    def _client_id_prefix(cls, prefix: str) -> str:
        return check_client_id_prefix(prefix)

    @field_validator("alerts_webhook_url")
    @classmethod
    def _webhook_url(cls, url: str | None) -> str | None:
        return check_url(url, HTTP_URL) if url else None

    @field_validator("api_cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (
                parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/")
            ):
                raise ValueError(f"expected origins like https://host[:port] or *, got {origin!r}")
        return origins

    @field_validator("dask_scheduler")
    @classmethod
    def _dask_url(cls, url: str | None) -> str | None:
        return check_url(url, DASK_URL) if url else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments win, then the environment, then the TOML file of ENERGYHUB_CONFIG."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if toml_file:
            sources.append(SettingsFile(settings_cls, toml_file=toml_file))
        return tuple(sources)


def load_settings() -> Settings:
    """Read the settings, turning a bad value into a one-line ConfigError naming the variable,
    its value (secrets masked) and what was expected."""
    toml_file = os.environ.get(CONFIG_FILE_VARIABLE)
    if toml_file and not Path(toml_file).is_file():
        what = "not a regular file" if Path(toml_file).exists() else "no such file"
        raise ConfigError(f"{CONFIG_FILE_VARIABLE}={toml_file}: {what}")
    if toml_file and Path(toml_file).stat().st_size > DEFAULT_MAX_FILE_BYTES:
        most = f"larger than {size_text(DEFAULT_MAX_FILE_BYTES)}, the most a settings file may be"
        raise ConfigError(f"{CONFIG_FILE_VARIABLE}={toml_file}: {most}")
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        set_in_environment = {key.upper() for key in os.environ}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            variable = f"ENERGYHUB_{name.upper()}"
            expected = mask_text(error["msg"].removeprefix("Value error, "))
            if error["type"] == "extra_forbidden":
                expected = "not a setting (docs/configuration.md lists them)"
            shown = masked(name, error.get("input"))
            if toml_file and variable not in set_in_environment:  # the value came from the file
                problems.append(
                    f"{CONFIG_FILE_VARIABLE}={toml_file}: {name}={shown} ({variable}): {expected}"
                )
            else:
                problems.append(f"{variable}={shown}: {expected}")
        raise ConfigError("; ".join(problems)) from None
    except SettingsError as exc:  # a list setting that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        name = found.group(1) if found else "?"
        variable = f"ENERGYHUB_{name.upper()}"
        shown = masked(name, os.environ.get(variable))
        raise ConfigError(f'{variable}={shown}: expected a JSON list, e.g. ["a", "b"]') from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{CONFIG_FILE_VARIABLE}={toml_file}: {not_utf8(exc)}") from None
    except OSError as exc:  # no permission to read it
        raise ConfigError(
            f"{CONFIG_FILE_VARIABLE}={toml_file}: cannot read: {exc.strerror}"
        ) from None
    except ValueError as exc:  # a TOML file that does not parse
        reason = str(exc)
        if toml_file and _starts_with_bom(Path(toml_file)):
            reason = "starts with a byte-order mark, which TOML does not allow (save it as UTF-8 "
            reason += "without BOM)"
        raise ConfigError(f"{CONFIG_FILE_VARIABLE}={toml_file}: {reason}") from None


def _starts_with_bom(path: Path) -> bool:
    """Whether the file begins with a UTF-8 byte-order mark (False if it cannot be read now)."""
    try:
        with path.open("rb") as file:
            return file.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    except OSError:
        return False


POSTGRES_URL = (
    ("postgresql", "postgres"),
    "postgresql://user[:password]@host[:port]/database (or libpq's key=value form)",
)
MQTT_URL = (("mqtt", "mqtts"), "mqtt://[user[:password]@]host[:port] or mqtts://...")
HTTP_URL = (("http", "https"), "http(s)://host[:port]/path")
DASK_URL = (("tcp", "tls", "ws", "wss", "inproc", "ucx"), "[tcp://]host:port")
_PASSWORD = re.compile(r"(://[^/@:\[\]]*:)[^@/]*@")  # not the forms' `user[:password]@`
_CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_LIBPQ_KEYWORD = re.compile(r"^\s*\w+\s*=")


def check_url(url: str, form: tuple[tuple[str, ...], str]) -> str:
    """`url` if it has one of the schemes, a host (a path for PostgreSQL's socket form) and a
    numeric port; else ValueError saying the expected form."""
    schemes, expected = form
    if form is POSTGRES_URL and _LIBPQ_KEYWORD.match(url):
        _libpq_parses(url, expected)  # libpq's `host=... dbname=...` form
        return url
    if form is DASK_URL and "://" not in url:
        url = f"tcp://{url}"  # dask's own default protocol
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # e.g. "Invalid IPv6 URL"
        raise ValueError(f"expected {expected}; {exc}") from None
    if parts.scheme not in schemes or "://" not in url:
        raise ValueError("expected " + expected)
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is no number or too large)
    except ValueError:
        raise ValueError(f"expected {expected}; the port is not a number from 1 to 65535") from None
    if not parts.hostname and form is not POSTGRES_URL:
        raise ValueError(f"expected {expected}; the host is missing")
    if form is POSTGRES_URL:
        _libpq_parses(url, expected)
    return url


def _libpq_parses(url: str, expected: str) -> None:
    """ValueError unless libpq parses `url` (an unknown option, a bad URI), without connecting."""
    from psycopg import ProgrammingError  # imported here: only commands with a database pay
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "not a connection URL"
        raise ValueError(f"expected {expected}; {reason}") from None


def masked(name: str, value: Any) -> str:
    """A setting's value as it may be printed: passwords in URLs and secrets as `***`."""
    if value is None:
        return "(unset)"
    if "secret" in name or "password" in name:
        return "'***'"
    return repr(mask_text(str(value)))


def mask_text(text: str) -> str:
    """`text` with the passwords of URLs and of libpq's `password=` as `***`."""
    return _CONNINFO_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", text))
