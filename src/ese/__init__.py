"""ese: the Efficient Speech recognition Engine (sparse LSTM, FPGA 2017) as Python software.

The flow is train -> compress -> compile -> accelerate; each stage lives in its own sub-package
and passes a file artefact to the next (see docs/ and the design notes).
"""

__version__ = "0.1.0"


def load(path, engine=None, threads=0):
    """A recognizer for any model file ese writes (``.pt``, ``.qnpz``, ``.ese``): see :mod:`ese.api`."""
    from ese.api import load as _load

    return _load(path, engine=engine, threads=threads)
