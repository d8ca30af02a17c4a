import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(scope="session")
def tf():
    return pytest.importorskip("tensorflow", reason="needs the export extra: pip install -e '.[export]'")
