"""`ese prune --steps` typed by a user must decrease toward the target (issue 12, item 10)."""

import pytest

from ese.compress.steps import check_explicit_steps
from ese.errors import ConfigError


def test_rising_steps_are_refused():
    with pytest.raises(ConfigError, match=r"--steps 0\.1,0\.5 must decrease toward the target density 0\.25, "
                                          r"but 0\.5 follows 0\.1"):
        check_explicit_steps([0.1, 0.5], 0.25)


def test_steps_at_or_below_the_target_are_refused():
    with pytest.raises(ConfigError, match=r"--steps 0\.5,0\.25: 0\.25 is not above the target density 0\.25"):
        check_explicit_steps([0.5, 0.25], 0.25)


@pytest.mark.parametrize("steps", [[], [0.5], [0.5, 0.3, 0.2]])
def test_sensible_steps_pass(steps):
    check_explicit_steps(steps, 0.11)
