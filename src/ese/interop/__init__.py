"""Models in and out of ese: PyTorch ``nn.LSTM`` state dicts and ONNX graphs (docs/interop.md).

``layers`` holds the one description both directions share (an LSTMP layer in our gate order)
and the gate-order maps; ``torch_import`` / ``onnx_import`` read foreign files into it,
``build`` turns it into a checkpoint, ``torch_export`` / ``onnx_export`` write ours out.
"""
