"""The per-container shim (containerd-shim-runc-v2's role) and dockyardd's client for it.

Modules: main (the shim process), ops (its request handlers), process (one
supervised process and its stdio), streams (epoll loop, connections), runtime
(the OCI runtime CLI), jsonlog (json-file log), protocol (wire format, shared),
client (asyncio side used by the daemon: shim_argv, spawn_shim, ShimClient).

Nothing is imported here: the shim process must stay small (see protocol.py).
"""
