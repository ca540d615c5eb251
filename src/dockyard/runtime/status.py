"""``state``: print the OCI state of a container, as runc (indented JSON)."""

from __future__ import annotations

from ..oci import jsonio
from . import state as st


def main(ctx, command, opts, args) -> int:
    container = st.load(ctx.root, args[0])
    print(jsonio.dumps_indent(container.oci_state()), end="")
    return 0
