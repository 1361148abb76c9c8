"""Tab 4, evaluation of a run: accuracy and per-class metrics, the confusion matrix whose cells open their
images (`confusion_matrix`), and galleries of evaluated images (`gallery`) such as the top losses, which can
be excluded or relabeled. `view` is the tab.
"""
