"""Pull-through cache (proxy) mode: dockyard-registry caches an upstream registry and still takes pushes.

Configured by the ``proxy`` section (distribution's keys: remoteurl, username, password, ttl).

Pulls (GET/HEAD of a manifest by tag or digest, GET/HEAD of a blob, tags/list) of a repository
that is not local go upstream on a miss. A blob GET streams the upstream body to the client while
writing it to storage; it is stored (moved into blobs/ and linked into the repository) only when
its digest matches, and the last chunk is held back until then, so a client never gets a whole
body of wrong content. Concurrent pulls of one blob fetch it once (the others wait and read the
stored copy). A blob HEAD asks upstream's HEAD and stores nothing. Manifests are stored byte for
byte with their tag; a manifest by digest must hash to that digest. Later pulls come from the cache.
A cached tag older than ``ttl`` (default 168h, "0": never) is re-checked with a HEAD upstream: the
same digest restarts its ttl, a new digest is fetched, a 404 untags it, and an upstream that cannot
answer leaves the cached copy served. Content by digest never expires (garbage collection removes
content, not the proxy). tags/list of a cached repository is upstream's list, or the cached tags
while upstream is down. The catalog lists what is stored (local and cached repositories).

Unlike distribution's proxy mode (which refuses every push), a repository that a client pushes to
before anything was cached in it becomes LOCAL (marker repositories/<name>/_local; a repository
that held content before proxy mode was turned on is local too): it is an ordinary repository and
is never looked up upstream. A push (upload, mount, manifest PUT) or a delete in a repository that
holds cached content (marker repositories/<name>/_proxied, written before its first cached byte)
is refused with 405 UNSUPPORTED -- distribution's answer to a push to a proxy -- and a message
naming the upstream; docker prints "unsupported: repository <name> is a pull-through cache of ...".
A name that exists upstream but was never pulled through can thus be claimed by a local push.

Upstream failures for content that is not cached answer 404 with the spec's code (MANIFEST_UNKNOWN,
BLOB_UNKNOWN, NAME_UNKNOWN) and a message saying why (e.g. "manifest unknown: ... upstream registry
http://host:5000 unavailable: ..."): docker shows that text and does not retry, where a 5xx would be
reported as a bare "received unexpected HTTP status". Upstream auth (anonymous, Basic, Bearer with
username/password) is the engine's registry client (dockyard.distribution.client.RegistryClient).
Cached tags are written by the cache itself, outside immutable-tag rules (the upstream decides).
"""

from dockyard.registry.proxy.registry import ProxyRegistry
from dockyard.registry.proxy.settings import ProxySettings, parse_settings

__all__ = ["ProxyRegistry", "ProxySettings", "parse_settings"]
