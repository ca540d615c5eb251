from __future__ import annotations

import pytest

from tests.support.runtimes import Runtime


@pytest.fixture(params=["runc", "dockyard"])
def rt(request, tmp_path):
    """The same test against runc and dockyard-runtime: their difference is our bug list."""
    import shutil

    if request.param == "runc" and not shutil.which("runc"):
        pytest.skip("runc is not installed")
    runtime = Runtime(request.param, str(tmp_path))
    yield runtime
    runtime.cleanup()


@pytest.fixture
def ours(tmp_path):
    runtime = Runtime("dockyard", str(tmp_path))
    yield runtime
    runtime.cleanup()
