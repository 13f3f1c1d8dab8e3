import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from corpus_factory import make_tone_corpus  # noqa: E402


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> Path:
    """A small learnable TIMIT-layout corpus shared (read-only) by the tests of a session."""
    return make_tone_corpus(tmp_path_factory.mktemp("tone_corpus"), speakers=4, utts=6)


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray with 2 CPUs for every --backend ray test of the session (started once:
    starting it is most of their time)."""
    from ese.parallel import ray_session

    with ray_session(num_cpus=2) as ray:
        yield ray


@pytest.fixture(scope="session")
def pm():
    """scripts/package_model.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("package_model", Path(__file__).parents[1] / "scripts" / "package_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
