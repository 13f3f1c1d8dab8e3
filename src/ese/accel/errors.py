"""Errors of the accelerator models."""

from ese.errors import EseError


class AccelError(EseError):
    """A program, trace or hardware setting the accelerator models cannot use."""
