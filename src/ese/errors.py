"""Project exceptions: every user-facing failure is one of these, with an actionable message.

The CLI prints them without a traceback and exits non-zero; anything else is a bug in ese.
"""


class EseError(Exception):
    """Base class of every error a user can cause and fix."""

    exit_code = 1


class ConfigError(EseError):
    """A configuration value or file is invalid."""


class CorpusError(EseError):
    """The corpus layout or an annotation file is wrong (missing split, bad .PHN, unknown phone)."""


class AudioError(EseError):
    """An audio file is unreadable, truncated or has the wrong format or sample rate."""


class FeatureError(EseError):
    """Features are non-finite or inconsistent with their configuration."""


class CheckpointError(EseError):
    """A checkpoint is missing, corrupt, non-finite, or does not match the requested model."""


class ToolMissingError(EseError):
    """A required system tool (festival, espeak-ng, ...) is not installed."""


class OutputError(EseError):
    """An output location cannot be written (read-only, full, no permission, not a directory)."""


class LockError(EseError):
    """Another process is already working in the same directory."""


class InteropError(EseError):
    """A model given to ``ese import`` / ``ese export`` cannot be converted (foreign layout, a
    refused feature, a damaged file), or a converted model does not reproduce its source."""
