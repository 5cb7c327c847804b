import pytest


@pytest.fixture(scope="session", autouse=True)
def _torch_on_one_thread():
    """PyTorch's OpenMP workers spin after each op and steal the cores minigrad's own OpenMP
    team needs when both run in one process; the reference side runs on one thread."""
    torch = pytest.importorskip("torch", reason="torch.optim is the reference")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
