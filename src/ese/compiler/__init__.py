"""The compiler (ESE.md sections 2, 4 and 5): partition of rows over PEs, sparse-column encoding,
program image and schedule. The partition is the one mapping every other stage calls."""

from ese.partition import Partition, layer_partitions, matrix_partition, partition_rows

__all__ = ["Partition", "layer_partitions", "matrix_partition", "partition_rows"]
