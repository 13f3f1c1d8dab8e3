"""Stage drivers: each runs one stage of the flow end to end (read its inputs, run the
algorithms of the layers below, write its artefacts and report). ``ese run`` (``ese.pipeline``)
and the commands (``ese.commands``) both call these, so a stage behaves the same from either.

``prune`` (iterative / gradual pruning with retraining and resume), ``sensitivity`` (the scan's
table, Markdown and plot), ``quantize`` (calibrate, quantize, score, sweep, report), ``compile``
(fixed-point model -> image and compile report), ``simulate`` (the cycle model's summary),
``sweep`` (the design-space sweep's table). The layer sits above the executors and below
``pipeline`` (docs/architecture.md).
"""
