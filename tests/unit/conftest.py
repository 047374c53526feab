from __future__ import annotations

import pytest
from moto import mock_aws

from orderflow.aws import connect
from orderflow.provision.base import Context
from orderflow.provision.package import build_package
from orderflow.stack import StackConfig, StackSettings

# Deliberately not us-east-1: nothing may assume the guide's region.
REGION = "eu-west-2"


class FakeTime:
    """An injectable clock and sleep: retries and waits advance it instead of the real clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def mocked():
    with mock_aws():
        yield


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_ctx(mocked, fake_time):
    def make(stack: str = "default", **settings) -> Context:
        return Context(
            aws=connect(region=REGION),
            config=StackConfig(stack, StackSettings(**settings)),
            package=build_package(),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )

    return make


@pytest.fixture
def ctx(make_ctx) -> Context:
    return make_ctx()
