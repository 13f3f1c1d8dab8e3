"""The CPU engine (issue 6): a compressed recurrent stack (any cell :mod:`ese.runtime.cells` has
kernels for) on numba kernels, float or fixed point.

:class:`Engine` packs a model (float checkpoint, fixed-point model or program image);
:class:`Recognizer` streams frames of one or many streams; ``Engine.posteriors`` is the utterance
API. Fixed-point mode is bit-exact with :class:`ese.compress.reference.ReferenceModel`.
"""

from ese.runtime.engine import MODES, Engine
from ese.runtime.errors import EngineError
from ese.runtime.recognizer import Recognizer

__all__ = ["MODES", "Engine", "EngineError", "Recognizer"]
