"""Images beside the supervisor chain: layer tars (apply, diff, whiteouts), unpacking, archives.

`layers.apply_layer` applies a layer blob (plain, gzip, zstd) into a directory;
`diff` computes a container's changes and writes them as a layer; `unpack`
unpacks an image's layers into snapshots named by chain ID; `archive` reads
and writes `docker save` tars and OCI layouts.
"""
