"""The RTL's exception."""

from ese.errors import EseError


class RtlError(EseError):
    """A program or parameter setting the RTL does not implement, or a toolchain failure."""
