"""Checks of a user's explicit ``ese prune --steps`` against the target density.

From the configuration, steps at or below the target are skipped silently (a preset's
0.5,0.3,0.2 serves any target). Steps typed on the command line mean what they say, so
``--steps 0.1,0.5 --density 0.25`` (rising, and 0.1 below the target) is refused rather than
quietly reordered and cut.
"""

from __future__ import annotations

from typing import Sequence

from ese.errors import ConfigError


def check_explicit_steps(steps: Sequence[float], density: float, option: str = "--steps") -> None:
    """ConfigError unless ``steps`` decrease strictly and all lie above the target ``density``."""
    text = ",".join(f"{s:g}" for s in steps)
    for prev, cur in zip(steps, steps[1:]):
        if not cur < prev:
            raise ConfigError(f"{option} {text} must decrease toward the target density {density:g}, "
                              f"but {cur:g} follows {prev:g}")
    low = [s for s in steps if not s > density]
    if low:
        raise ConfigError(f"{option} {text}: {', '.join(f'{s:g}' for s in low)} is not above the target "
                          f"density {density:g}; list only the intermediate densities, largest first")
