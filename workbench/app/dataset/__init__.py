"""Tab 1, the dataset browser: open folders (`opening`: drops and folder dialogs), scan them in the background
(`scan`), show classes and counts per split with the balance chart (`class_overview`,
`balance_chart`), the files that cannot be used (`problems_list`), a virtualized thumbnail grid with filters
(`thumbnails`, `thumbnail_filter`, `image_grid`), the selected image (`image_preview`), and curation:
exclude or relabel an image, with undo (`curation_actions`, over the engine's
`workbench.engine.data.curation`). `panel` lays the parts out.
"""
