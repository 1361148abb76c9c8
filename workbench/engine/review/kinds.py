"""Names of the kinds of suspect, shared by the engine and the app (no torch here: the app imports it early)."""

from __future__ import annotations

KIND_NAMES = {"label": "label error", "duplicate": "duplicate/leak", "outlier": "outlier"}
# What a point on the map is coloured by when colouring by suspicion (the first kind that applies).
SUSPICION = ("none", "label", "duplicate", "outlier")
