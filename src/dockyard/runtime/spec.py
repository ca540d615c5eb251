"""``spec``: write a default config.json into the bundle (refuses to overwrite one)."""

from __future__ import annotations

import json
import os

from ..errors import Conflict
from .specgen import default_spec


def main(ctx, command, opts, args) -> int:
    bundle = opts.get("bundle") or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise Conflict("File config.json exists. Remove it first", path=path)
    spec = default_spec(rootless=opts.flag("rootless"))
    with open(path, "w") as f:
        json.dump(spec, f, indent="\t")
    return 0
