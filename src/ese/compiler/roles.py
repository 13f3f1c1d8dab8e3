"""The four operations of a layer and their codes: the one definition of every role numbering.

``ROLES`` numbers the operations in dependency order; the program image stores these indices in
``schedule.ops`` (docs/image-format.md), so they never change. The executors that keep state per
matrix product (the cycle model's recurrence, the RTL's 2-bit role signal and memory layout) use
the SpMV roles alone, numbered in the same order with the element-wise stage left out; that
numbering is derived here, not restated.
"""

from __future__ import annotations

ROLES = ("x", "r", "ew", "ym")  # image codes 0..3: W_x x, W_r y, element-wise, W_ym m
ELEMENTWISE = "ew"
MATRIX_OF_ROLE = {"x": "w_x", "r": "w_r", "ym": "w_ym"}  # the SpMV roles and the matrix each multiplies

SPMV_ROLES = tuple(r for r in ROLES if r != ELEMENTWISE)  # ("x", "r", "ym")
SPMV_CODE = {role: code for code, role in enumerate(SPMV_ROLES)}  # x 0, r 1, ym 2
ROLE_X, ROLE_R, ROLE_YM = (SPMV_CODE[r] for r in ("x", "r", "ym"))

assert tuple(MATRIX_OF_ROLE) == SPMV_ROLES  # one matrix per SpMV role, in issue-code order
