"""ui.parallel: independent reads at once, results in order, errors and the language carried over."""

from __future__ import annotations

import threading

import pytest

from crm import i18n, ui

BARRIER_TIMEOUT_S = 10


def test_calls_run_at_the_same_time_and_results_keep_their_order() -> None:
    # Each call waits for the other: this only finishes if they run concurrently.
    barrier = threading.Barrier(2, timeout=BARRIER_TIMEOUT_S)

    def meet(value: str) -> str:
        barrier.wait()
        return value

    assert ui.parallel(lambda: meet("first"), lambda: meet("second")) == ["first", "second"]


def test_an_error_in_another_thread_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("the second read failed")

    with pytest.raises(ValueError, match="the second read failed"):
        ui.parallel(lambda: 1, fail)


def test_the_callers_language_is_seen_by_every_call() -> None:
    i18n.set_language("zh-CN")
    try:
        assert ui.parallel(i18n.get_language, i18n.get_language) == ["zh-CN", "zh-CN"]
    finally:
        i18n.set_language("en")


def test_a_single_call_runs_in_the_callers_thread() -> None:
    assert ui.parallel(lambda: threading.current_thread()) == [threading.current_thread()]
