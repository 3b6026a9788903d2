import pytest
import torch
from hub_server import HubStandIn
from tiny_models import tiny_config


@pytest.fixture(scope="session", autouse=True)
def one_cpu_thread():
    """Tests use tiny models, which gain nothing from intra-op threads and lose a lot to them on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def hub():
    """A stand-in for the Hugging Face Hub's HTTP API on the loopback address (tests/hub_server.py), for one test
    module; `hub.environment` points a Python process at it."""
    with HubStandIn() as stand_in:
        yield stand_in
