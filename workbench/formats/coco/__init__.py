"""COCO instances/keypoints JSON <-> domain records: ``read`` (file -> Dataset), ``write`` (the one
writer, records -> COCO dict -> file) and ``layouts`` (where datumaro and roboflow put files and images).

COCO conventions (see DESIGN.md): category ids are integers from 1, bbox ``[x, y, w, h]`` floats,
``area`` the mask area, keypoints ``[x, y, v] * K`` and skeleton pairs 1-based in the file (0-based in
the domain). Extensions we write and read back: ``flip_pairs`` (1-based like ``skeleton``) on keypoint
categories, ``attributes`` and ``score`` on annotations.
"""
