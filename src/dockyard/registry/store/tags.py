"""Tags: ``_manifests/tags/<tag>/current/link`` holds the digest the tag points to."""

from __future__ import annotations

from dockyard.registry import errors
from dockyard.registry.storage.driver import PathNotFound, StorageDriver
from dockyard.registry.store import paths


class TagStore:
    """Tag -> digest links of one registry."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    async def resolve(self, repo: str, tag: str) -> str:
        """The digest ``tag`` points to; MANIFEST_UNKNOWN if the tag does not exist."""
        try:
            return (await self.driver.get(paths.tag_link(repo, tag))).decode().strip()
        except PathNotFound:
            raise errors.manifest_unknown({"tag": tag}) from None

    async def set(self, repo: str, tag: str, d: str) -> None:
        """Point ``tag`` at ``d`` (atomically replacing any previous target)."""
        await self.driver.put(paths.tag_link(repo, tag), d.encode())

    async def delete(self, repo: str, tag: str) -> None:
        """Remove ``tag``; MANIFEST_UNKNOWN if it does not exist."""
        try:
            await self.driver.delete(paths.tag_dir(repo, tag))
        except PathNotFound:
            raise errors.manifest_unknown({"tag": tag}) from None

    async def all(self, repo: str) -> list[str]:
        """Every tag of ``repo``, sorted; [] when the repository has none."""
        try:
            names = await self.driver.list(paths.tags_dir(repo))
        except PathNotFound:
            return []
        return sorted(names)

    async def pointing_to(self, repo: str, d: str) -> list[str]:
        """The tags of ``repo`` whose target is ``d``."""
        found = []
        for tag in await self.all(repo):
            try:
                if (await self.driver.get(paths.tag_link(repo, tag))).decode().strip() == d:
                    found.append(tag)
            except PathNotFound:
                continue
        return found
