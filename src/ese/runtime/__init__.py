"""The CPU engine (issue 6): a compressed recurrent stack (any cell :mod:`ese.runtime.cells` has
kernels for) on numba kernels, float or fixed point.

:class:`Engine` packs a model (float checkpoint, fixed-point model or program image);
:class:`Recognizer` streams frames of one or many streams; ``Engine.posteriors`` is the utterance
API. Fixed-point mode is bit-exact with :class:`ese.compress.reference.ReferenceModel`.
"""

from ese.runtime.jitcache import refresh as _refresh_kernel_cache

_refresh_kernel_cache()  # before any kernel is loaded: an edit of cells.py must not run stale code

from ese.runtime.engine import MODES, Engine  # noqa: E402
from ese.runtime.errors import EngineError  # noqa: E402
from ese.runtime.recognizer import Recognizer  # noqa: E402

__all__ = ["MODES", "Engine", "EngineError", "Recognizer"]
