"""The supervisor layer (containerd's role): content store, metadata, leases, GC, snapshots, images.

Root layout (each store draws its own subtree in its paths module)::

    <root>/
      metadata.db        SQLite (WAL): images, content labels, leases, snapshots (supervisor/metadata.py)
      metadata.db.lock   flock: shared by commits/record writes, exclusive during GC (supervisor/gc.py)
      content/           blobs and ingests (supervisor/content/paths.py)
      snapshots/<name>/  one directory per snapshotter (supervisor/snapshots/)
"""
