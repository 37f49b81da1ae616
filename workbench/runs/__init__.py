"""Training runs outside the UI process: frozen run folders, worker processes, the per-device queue.

A run is a folder (:mod:`.folders`) plus a store row. :mod:`.queue` claims queued rows for a free
device and starts their worker (:mod:`.processes`), the subprocess entry :mod:`.worker`, which trains
with :mod:`workbench.train` and reports through the folder and the row. :mod:`.devices` answers what
this machine can run on.
"""
