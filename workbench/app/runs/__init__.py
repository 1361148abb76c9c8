"""Tab 7, the run history: the registry's runs as a table with their curves and metrics (`view`), several
runs' validation curves overlaid (`comparison`), and File → Export… of a run as ONNX, TorchScript or
safetensors (`export_dialog`).
"""
