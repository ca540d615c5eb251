"""``state``: print the OCI state of a container, as runc (indented JSON)."""

from __future__ import annotations

import json

from . import state as st


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    print(json.dumps(container.oci_state(), indent=2), end="")
    return 0
