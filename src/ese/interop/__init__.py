"""Models in and out of ese: PyTorch ``nn.LSTM`` state dicts and ONNX graphs (docs/interop.md).

``layers`` holds the one description both directions share (a layer of any cell, its arrays in
our order) and moves row blocks by the frameworks' layouts, which are the cell description's
(``ese.cell.CellSpec.foreign``); ``torch_import`` / ``onnx_import`` read foreign files into it,
``build`` turns it into a checkpoint, ``torch_export`` / ``onnx_export`` write ours out.
"""
