"""Tab 2, the model picker: the zoo as a searchable table (`zoo_table`) with parameters and MACs at the
dataset's input size (`zoo_size_sweep`), the selected model's layer-by-layer summary (`layer_summary`), where
training starts from and the transfer strategy (`start_from`), and ImageNet weight downloads
(`weights_download`). `zoo_info` is the worker-side half (engine calls); `panel` assembles the tab.
"""
