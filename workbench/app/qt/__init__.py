"""Qt pieces shared by several tabs, importing nothing else of the app: background work that reports back
on the UI thread (`workers`), garbage collection from the UI thread only (`gc_pump`), small dialogs
(`dialogs`), widgets built after the first paint (`lazy`), NumPy pictures as Qt images (`qimages`), the
training curves the training and runs tabs both draw (`plots`), the run chooser of the result tabs
(`run_picker`), the engine's messages in the app's words (`wording`: an option a message names is said as
the control that sets it), the app's look (`style`) and shims over PySide6 versions (`qt_compat`).
"""
