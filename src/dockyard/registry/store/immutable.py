"""Immutable tags: rules naming tags that, once pushed, never move to another manifest.

Config (``immutabletags``)::

    immutabletags:
      - repository: "release/*"      # glob over the repository name
        tags: "v*"                   # a glob, or a list of globs, over the tag

Repository globs work per path component: ``*`` and ``?`` and ``[...]`` never match
"/", so ``release/*`` covers ``release/app`` but not ``release/a/b``; ``**`` matches any
number of components (``release/**`` covers both and ``release`` itself, ``**`` alone covers
every repository).
Tag globs are plain ``fnmatch`` globs (tags have no "/"). Matching is case-sensitive.
A matching tag that exists may be pushed again only with the digest it already has;
deleting it, or deleting by digest a manifest it points to, is DENIED (403).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.registry import errors


def _translate_component(glob: str) -> str:
    """Regex of one path component's glob, where nothing crosses "/"."""
    parts: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            parts.append("[^/]*")
        elif c == "?":
            parts.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob[i + 1:i + 2] in ("!", "]") else i + 1)
            if end < 0:
                parts.append(re.escape(c))
            else:
                inner = glob[i + 1:end]
                neg = inner.startswith("!")
                inner = inner[1:] if neg else inner
                parts.append(f"[{'^/' if neg else ''}{inner.replace(chr(92), chr(92) * 2)}]")
                i = end
        else:
            parts.append(re.escape(c))
        i += 1
    return "".join(parts)


def repository_pattern(glob: str) -> re.Pattern[str]:
    """Compile a repository glob: "*" within one component, "**" across components."""
    comps = glob.split("/")
    regex = ""
    for n, comp in enumerate(comps):
        last = n == len(comps) - 1
        if comp == "**" and last:
            regex = regex[:-1] + "(?:/.*)?" if regex else ".*"
        elif comp == "**":
            regex += "(?:[^/]+/)*"
        else:
            regex += _translate_component(comp) + ("" if last else "/")
    return re.compile(rf"\A{regex}\Z")


@dataclass(frozen=True)
class Rule:
    """One ``{repository, tags}`` entry."""

    repository: str
    tags: tuple[str, ...]
    pattern: re.Pattern[str]

    def matches(self, repo: str, tag: str) -> bool:
        return bool(self.pattern.match(repo)) and any(fnmatch.fnmatchcase(tag, t) for t in self.tags)


class ImmutableRules:
    """The configured rules; ``is_immutable(repo, tag)`` is all the store asks."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    def __bool__(self) -> bool:
        return bool(self.rules)

    def is_immutable(self, repo: str, tag: str) -> bool:
        return any(r.matches(repo, tag) for r in self.rules)

    def check_push(self, repo: str, tag: str, current: str | None, new: str) -> None:
        """DENIED when ``tag`` is immutable and already points to a digest other than ``new``."""
        if current is not None and current != new and self.is_immutable(repo, tag):
            raise denied_tag(repo, tag, {"tag": tag, "digest": current})

    def check_delete(self, repo: str, tags: list[str]) -> None:
        """DENIED when any of ``tags`` (existing tags of ``repo`` about to go) is immutable."""
        for tag in tags:
            if self.is_immutable(repo, tag):
                raise denied_tag(repo, tag, {"tag": tag})


def denied_tag(repo: str, tag: str, detail: Any) -> errors.RegistryError:
    return errors.denied(detail, f"tag {tag} is immutable in repository {repo}")


def parse_rules(raw: list[Any] | None) -> ImmutableRules:
    """Rules from the raw ``immutabletags`` list; InvalidArgument "configuration: immutabletags[i]..."."""
    if raw is None:
        return ImmutableRules([])
    if not isinstance(raw, list):
        raise InvalidArgument("configuration: immutabletags must be a list of {repository, tags} rules")
    return ImmutableRules([_rule(item, f"immutabletags[{i}]") for i, item in enumerate(raw)])


def _rule(item: Any, where: str) -> Rule:
    if not isinstance(item, dict):
        raise InvalidArgument(f"configuration: {where} must be a mapping with repository and tags")
    unknown = sorted(set(item) - {"repository", "tags"})
    if unknown:
        raise InvalidArgument(f"configuration: {where}: unknown key {unknown[0]!r} (known: repository, tags)")
    repo = item.get("repository", "**")
    if not isinstance(repo, str) or not repo or repo.startswith("/") or "//" in repo:
        raise InvalidArgument(f"configuration: {where}.repository must be a repository glob, got {repo!r}")
    tags = item.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
        raise InvalidArgument(f"configuration: {where}.tags must be a tag glob or a list of tag globs, "
                              f"got {item.get('tags')!r}")
    return Rule(repo, tuple(tags), repository_pattern(repo))
