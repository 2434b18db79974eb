"""Forecast fixtures: a unique MQTT topic prefix for the tests that run the scheduler."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"
