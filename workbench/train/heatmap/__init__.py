"""Top-down keypoint heatmap models (pose): crops around boxes, Gaussian targets, Hourglass / U-Net, decoding.

The pieces are pure and tested on their own: :mod:`.crops` (the affine from an image to a model
crop and back, flips), :mod:`.layout` (which heatmap channels belong to which class, flip
permutations from the schema or from left/right names), :mod:`.targets` (Gaussian targets),
:mod:`.decode` (argmax + quarter offset back to natural pixels), :mod:`.metrics` (PCK and OKS AP),
:mod:`.models` (stacked Hourglass, U-Net), :mod:`.data` (the crop dataset).
"""
