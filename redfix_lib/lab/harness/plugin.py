"""pytest plugin loaded by every tier run (-p redfix_lib.lab.harness.plugin): the `ctx` fixture."""
import pytest

from . import ctx as _ctx


@pytest.fixture(scope="session")
def ctx():
    return _ctx.get()
