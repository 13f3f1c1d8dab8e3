"""The accelerator models (ESE.md section 6): a bit-exact functional model that executes a compiled
program the way the PEs do, and a cycle-level model of one channel (docs/cycle-model.md)."""
