"""ese: the Efficient Speech recognition Engine (sparse LSTM, FPGA 2017) as Python software.

The flow is train -> compress -> compile -> accelerate; each stage lives in its own sub-package
and passes a file artefact to the next (see docs/ and the design notes).
"""

__version__ = "0.1.0"

from ese.threads import set_openmp_defaults as _set_openmp_defaults

_set_openmp_defaults()  # before anything loads torch: threads sleep, not spin, on a busy machine
