"""Helpers the Python module's tests share."""

import os
import signal
import threading
import time

import pytest


@pytest.fixture
def ticks_while():
    """ticks_while(work) runs work() in another thread and counts the ticks of a 1 ms sleep loop here meanwhile; it
    returns (ticks, seconds). A call holding the GIL throughout would leave this loop a handful of ticks."""

    def run(work):
        done = threading.Event()
        worker = threading.Thread(target=lambda: (work(), done.set()))
        start = time.monotonic()
        worker.start()
        ticks = 0
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)
        worker.join()
        return ticks, time.monotonic() - start

    return run


@pytest.fixture
def stopped_by_ctrl_c():
    """stopped_by_ctrl_c(work) sends this process SIGINT 0.5 s into work() and checks that work raises
    KeyboardInterrupt within 10 s."""

    def run(work):
        timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            work()
        assert time.monotonic() - start < 10

    return run
