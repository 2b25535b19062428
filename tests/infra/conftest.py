"""One synth of the stack as `cdk synth` builds it from cdk.json, shared by the files that read it."""

from __future__ import annotations

import pytest

from synth_helpers import Synthesized, synthesize


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory) -> Synthesized:
    return synthesize(tmp_path_factory)
