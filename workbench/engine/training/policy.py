"""The numbers of the default recipe that the clients quote (the app's tooltips, the CLI's help), written
once so that what they say and what the engine does cannot drift apart, and free of torch so quoting them
loads nothing. defaults.py applies them."""

FEW_IMAGES = 2_500  # below: pretrained features + LP-FT beat training from scratch (benchmarks/few_shot.py)
PRETRAINED_SIZES = (224, 192, 160, 128, 96)  # input sides for a pretrained backbone, largest first
SHIFT_FROM_EPOCHS = 10  # scratch runs at least this long get small random shifts (shorter ones: flips only)
