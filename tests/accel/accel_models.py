"""The accelerator tests' names for the shared generator of random models (tests/random_models.py)."""

from random_models import random_input, random_program, random_qmodel  # noqa: F401
