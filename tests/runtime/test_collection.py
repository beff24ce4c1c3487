"""Collection between trials: what survives a trial is frozen, handed back every
FULL_EVERY trials and when the trials end, so a cycle that became garbage is still freed."""

from __future__ import annotations

import gc
import weakref

from tuner.runtime import collection


class Node:
    pass


def test_survivors_are_frozen_then_handed_back_and_their_cycles_collected():
    with collection.survivors_frozen() as frozen:
        node = Node()
        node.self = node  # a cycle alive when the first trial ends
        alive = weakref.ref(node)
        frozen(None, None)
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert alive() is not None  # frozen: not walked by the collections between trials
        for _ in range(collection.FULL_EVERY - 1):
            frozen(None, None)
        assert alive() is None  # the collection of everything freed it
    assert gc.get_freeze_count() == 0


def test_a_sweep_leaves_nothing_frozen(tiny_space):
    import tuner

    tuner.search("forecasting", trials=2, space=str(tiny_space), study="gc", quiet=True)
    assert gc.get_freeze_count() == 0
