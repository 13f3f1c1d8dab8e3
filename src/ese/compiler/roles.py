"""The four kinds of operation of a layer and their codes: the one definition of every role numbering.

``ROLES`` numbers the operations in dependency order; the program image stores these indices in
``schedule.ops`` (docs/image-format.md), so they never change. A cell (``ese.cell``) uses a
subset of them and says which of its matrices each SpMV role multiplies. The executors that keep state per
matrix product (the cycle model's recurrence, the RTL's 2-bit role signal and memory layout) use
the SpMV roles alone, numbered in the same order with the element-wise stage left out; that
numbering is derived here, not restated.
"""

from __future__ import annotations

ROLES = ("x", "r", "ew", "ym")  # image codes 0..3: input SpMV, recurrent SpMV, element-wise, output SpMV
ELEMENTWISE = "ew"

SPMV_ROLES = tuple(r for r in ROLES if r != ELEMENTWISE)  # ("x", "r", "ym")
SPMV_CODE = {role: code for code, role in enumerate(SPMV_ROLES)}  # x 0, r 1, ym 2
ROLE_X, ROLE_R, ROLE_YM = (SPMV_CODE[r] for r in ("x", "r", "ym"))
