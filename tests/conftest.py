import pytest
import torch
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
