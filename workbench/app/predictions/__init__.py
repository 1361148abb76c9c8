"""Tab 5, predictions: the top classes with probability bars for images the user drops or picks, exportable
as CSV, the same numbers as `workbench predict`. `view` is the tab.
"""
