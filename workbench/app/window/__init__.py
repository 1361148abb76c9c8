"""The main window and what belongs to the window rather than to one tab: it builds every tab and wires
them together (`main_window`, with the result tabs' wiring in `result_tabs`), the menu bar (`menus`), the
status bar (`status_bar`), what opens on the first launch (`first_launch`), what is kept between launches
(`settings`, `window_state`) and the start of the app (`launch`, behind `workbench` with no subcommand). The
only package that may import the tab packages.
"""
