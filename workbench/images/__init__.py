"""Images: decoding policy (``decode``), import sources (``sources``), content-addressed files with
thumbnails and display copies (``storage``), and the overlay drawer (``overlay``)."""
