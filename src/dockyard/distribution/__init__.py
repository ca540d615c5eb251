"""The engine's registry client: pulling images over the distribution (OCI) API.

endpoints.py picks the registry URL for a reference (docker.io's real host, https or, for
insecure and loopback registries, http too); client.py talks HTTP with auth challenges;
manifests.py resolves tags to one platform's manifest; pull.py downloads into the content
store and records the image; progress.py writes Docker's JSON progress messages.
"""
