"""Compression (ESE.md sections 2 and 3): load-balance-aware pruning with retraining, and
fixed-point quantization."""
