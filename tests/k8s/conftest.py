import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture
def members():
    """Member processes a test starts; stopped (SIGTERM) after it."""
    started = []
    yield started
    for m in started:
        m.stop()
