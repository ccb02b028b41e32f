"""Every scenario in examples/ runs as it claims, on its own seed and on others (a claim is a promise)."""

from __future__ import annotations

from pathlib import Path

import pytest

import weir

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_holds_what_it_claims_on_every_seed_tried(path):
    scenario = weir.load_scenario(path)
    for seed in (None, 1, 2, 3, 4):
        result = weir.run(scenario, seed)
        broken = [e for e in result.expectations if not e.met]
        assert not broken, f"{path.name} seed {result.seed}: {broken}"
