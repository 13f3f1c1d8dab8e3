"""Backward-compatible name of :mod:`ese.partition`, which now sits below compress and compiler.

The row -> PE partition moved down so that pruning (``ese.compress``) no longer imports from the
compiler above it. Import from ``ese.partition``; this alias stays while code outside this
package (and docs/pruning.md) still names the old path.
"""

from ese.partition import (MAX_PES, Partition, check_pes, layer_partitions, matrix_partition,  # noqa: F401
                           partition_rows)
