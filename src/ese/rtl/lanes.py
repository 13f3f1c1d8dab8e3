"""Which element-wise lane each cell (``ese.cell``) runs on: the one cell-specific part of the RTL.

A new cell adds its lane (a subclass of ``ese.rtl.lane.Lane`` with ports ``acc_<block>`` for its
accumulator blocks) and one entry here; the PE, the channel and the memory images follow the
cell description.
"""

from __future__ import annotations

from ese.rtl.ew import EwLane
from ese.rtl.ew_gru import GruLane
from ese.rtl.lane import Lane

LANES: dict[str, type[Lane]] = {"lstmp": EwLane, "gru": GruLane}
