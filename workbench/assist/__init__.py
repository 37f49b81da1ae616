"""Assisted labelling: prompts (a box, clicks) on an upright image in, a mask and its editable shape out.

Everything here works in natural pixels of the upright image (EXIF orientation applied, as
:func:`workbench.images.decode.load_upright` gives it and as the store keeps it), so a shape comes
back where the prompt was. ``classic`` holds the weight-free OpenCV tools, ``shapes`` the mask ->
polygon/RLE step, ``sam`` the Segment Anything plumbing (the only module here that imports torch).
"""

from __future__ import annotations
