"""The driver and its client together, in one process, as upstream tests
drivers. cmd/jw/python_e2e_test.go runs the same driver under jumpwire."""

import pytest
from jumpstarter.client.core import DriverInvalidArgument
from jumpstarter.common.utils import serve

from acme_lamp.driver import Lamp


def test_lamp() -> None:
    with serve(Lamp(watts=60)) as lamp:
        assert lamp.state() == 0
        lamp.on()
        assert lamp.state() == 100
        assert lamp.dim(50) == 30
        assert list(lamp.watch(3)) == [50, 50, 50]
        with pytest.raises(DriverInvalidArgument, match="not between 0 and 100"):
            lamp.dim(150)
        assert lamp.ask("status") == "status: 50%\n"
        lamp.off()
        assert lamp.state() == 0
