"""Tab 6, the feature-map inspector: a run's module tree (`layer_tree`), the image and its flip/shift
(`image_chooser`), and three pages: a layer's channels as heatmaps (`feature_map_page`), the first layer's
filters (`filters_page`) and Grad-CAM (`grad_cam_page`), with the enlarged channel beside them
(`side_panel`). `work` is the worker-side half that computes the pictures; `requests` drops answers a newer
request has overtaken; `view` assembles the tab.
"""
