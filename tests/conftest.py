import pytest
from tiny_models import tiny_config


@pytest.fixture
def config():
    return tiny_config()
