"""A stop sticks: a library that swallows the exception a signal raised (Ultralytics' TryExcept swallows every
exception) does not make GuardianFlow's work go on; the stop is raised again where work would go on and when the
block ends, and forgotten once it has left GuardianFlow's blocks."""

from __future__ import annotations

import os
import signal
import time

import pytest

from gfcore.core import interrupts


def _swallowed(sig: int) -> None:
    from ultralytics.utils import TryExcept

    with TryExcept(verbose=False):
        os.kill(os.getpid(), sig)
        time.sleep(5)


@pytest.mark.parametrize("block", [interrupts.sigterm_raises, interrupts.children_stopped_when_interrupted])
def test_a_swallowed_sigterm_is_raised_at_the_next_checkpoint(block):
    reached = []
    with pytest.raises(interrupts.Terminated), block():
        _swallowed(signal.SIGTERM)
        reached.append("after the library")
        interrupts.raise_if_stopped()
        reached.append("after the checkpoint")
    assert reached == ["after the library"]
    interrupts.raise_if_stopped()  # forgotten once it left the block: nothing raised


def test_a_swallowed_stop_ends_its_block_and_is_raised_on_entering_one():
    reached = []
    with pytest.raises(interrupts.Terminated), interrupts.sigterm_raises():
        _swallowed(signal.SIGTERM)
        with interrupts.sigterm_raises():
            reached.append("inside a block entered after the stop")
    assert reached == []
    with pytest.raises(KeyboardInterrupt) as stopped, interrupts.sigterm_raises():
        _swallowed(signal.SIGINT)
    assert not isinstance(stopped.value, interrupts.Terminated), "Ctrl-C stays Ctrl-C"
