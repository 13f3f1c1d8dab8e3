"""The CPU engine's error: refused models, images and inputs."""

from ese.errors import EseError


class EngineError(EseError):
    """A model, program image or input the CPU engine cannot run (shape, dtype, range, state)."""
