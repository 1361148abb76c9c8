"""CNN Workbench: train, fine-tune and inspect convolutional networks on folders of images."""

__version__ = "0.1.0"
