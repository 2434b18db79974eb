"""`energyhub simulate --modbus`: the site's Modbus meters served by its gateways, not over MQTT."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiomqtt
from pymodbus.client import AsyncModbusTcpClient

from energyhub.modbus.registers import decode
from energyhub.sites import SiteFile, modbus_point
from simulators.mqtt import MqttUrl
from simulators.simulate import SimulationOptions, simulate


async def test_simulate_serves_modbus_meters_over_modbus_and_not_over_mqtt(
    modbus_site_file: SiteFile, modbus_port: int, prefix: str
) -> None:
    b01 = modbus_site_file.city.parks[0].buildings[0]
    main = next(m for m in b01.meters if m.id == "main")
    assert main.modbus is not None
    point = modbus_point(main.modbus, main.quantity)
    options = SimulationOptions(
        modbus_site_file,
        datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20),
        duration_s=20 * 60,
        step_s=60,
        speed=300,  # four seconds of wall time
        url=MqttUrl.parse("mqtt://127.0.0.1:1883"),
        prefix=prefix,
        modbus=True,
    )
    async with aiomqtt.Client("127.0.0.1", 1883) as watcher:
        await watcher.subscribe(f"{prefix}/expo/b01", qos=1)
        run = asyncio.create_task(simulate(options))
        frame = await asyncio.wait_for(anext(aiter(watcher.messages)), 30)  # step 0 is out
        client = AsyncModbusTcpClient("127.0.0.1", port=modbus_port, timeout=1, retries=0)
        assert await client.connect()
        read = await client.read_input_registers(point.address, count=point.count, device_id=1)
        client.close()
        summary = await run
    assert not read.isError(), read
    power_kw = decode(read.registers, point)
    assert 0 < power_kw < 50_000  # an office tower's import, read as an SDM630's watts
    assert summary.steps == 20
    values = frame.payload.decode()  # type: ignore[union-attr]
    assert '"main"' not in values and '"f3"' not in values and '"heat"' in values
