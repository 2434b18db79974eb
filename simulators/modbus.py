"""The simulated park's Modbus TCP gateways: its meters' values in the registers the site declares.

Each `modbus_gateways` entry of the site file becomes a pymodbus TCP server on its host and port,
with one device per unit id. A meter with `modbus:` is served there — encoded as its register map
or register says (type, word and byte order, scale, unit) — instead of being published over MQTT,
so the poller reads it through the real protocol. `stop()` and `start()` take a gateway away and
bring it back, as a power cut or a pulled cable would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType

from energyhub.modbus.registers import Point, encode
from energyhub.sites import ModbusGateway, SiteFile, modbus_point
from simulators.engine import StepReadings
from simulators.plant import Plant

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every refused request


@dataclass
class GatewayServer:
    """One gateway: a register image per unit, served while started."""

    gateway: ModbusGateway
    images: dict[int, list[int]] = field(default_factory=dict)
    points: list[tuple[int, int, Point]] = field(default_factory=list)
    """(channel index, unit, point) of every meter this gateway serves."""
    _server: ModbusTcpServer | None = None
    _task: asyncio.Task[None] | None = None

    async def _action(
        self,
        unit: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        image = self.images[unit]
        registers[: len(image)] = image

    def update(self, readings: StepReadings) -> None:
        for index, unit, point in self.points:
            words = encode(readings.value[index], point)
            self.images[unit][point.address : point.address + len(words)] = words

    async def start(self) -> None:
        devices = [
            SimDevice(
                unit,
                simdata=[SimData(0, count=len(image), datatype=DataType.REGISTERS)],
                action=functools.partial(self._action, unit),
            )
            for unit, image in sorted(self.images.items())
        ]
        self._server = ModbusTcpServer(devices, address=(self.gateway.host, self.gateway.port))
        self._task = asyncio.create_task(self._server.serve_forever())
        await asyncio.sleep(0)  # let it bind
        for _ in range(50):
            if self._server.transport is not None:
                return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._server, self._task = None, None


class ModbusGateways:
    """Every gateway of the site, as an async context manager that serves them all."""

    def __init__(self, site: SiteFile, plant: Plant) -> None:
        declared = {g.id: g for park in site.city.parks for g in park.modbus_gateways}
        self.servers: dict[str, GatewayServer] = {}
        for index, channel in enumerate(plant.channels):
            mapping = channel.meter.modbus
            if mapping is None:
                continue
            server = self.servers.get(mapping.gateway)
            if server is None:
                server = self.servers[mapping.gateway] = GatewayServer(declared[mapping.gateway])
            point = modbus_point(mapping, channel.meter.quantity)
            server.points.append((index, mapping.unit, point))
            image = server.images.setdefault(mapping.unit, [])
            end = point.address + point.count
            if len(image) < end:
                image.extend([0] * (end - len(image)))

    def update(self, readings: StepReadings) -> None:
        for server in self.servers.values():
            server.update(readings)

    async def __aenter__(self) -> ModbusGateways:
        for server in self.servers.values():
            await server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for server in self.servers.values():
            await server.stop()
