"""dockyard-runtime: a runc-compatible OCI runtime.

One module per operation (create, start, run, kill, delete, exec, ...); the
container's init side lives in ``init.py``; kernel calls go through
``dockyard.kernel``. The start path is benchmarked against runc, so modules
here import lazily and avoid heavy standard-library packages.
"""
