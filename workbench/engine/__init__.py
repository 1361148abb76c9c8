"""The headless engine: data, models, training, evaluation, inspection and the run registry.

Nothing under this package imports Qt; the desktop app and the CLI are two clients of it.
"""
