"""The tier's verdict: every test QueuePool passes passes with WardenPool, the listed
differences aside, and the list stays true."""

from __future__ import annotations

from tests.sqlalchemy_suite.differences import DIFFERENCES, Difference
from tests.sqlalchemy_suite.plugin import _test_id
from tests.sqlalchemy_suite.run import compare

FILES = ("test/engine/test_pool.py",)
LISTED = Difference("test/engine/test_pool.py::T::test_listed", "by design")


def test_all_passing_and_a_listed_failure_is_a_pass() -> None:
    queue = {"test/engine/test_pool.py::T::test_a": "passed", LISTED.test: "passed"}
    warden = {"test/engine/test_pool.py::T::test_a": "passed", LISTED.test: "failed"}
    result = compare(queue, warden, [LISTED], FILES)
    assert result.ok and result.expected == [LISTED.test]
    assert result.counts == {"test/engine/test_pool.py": (2, 2, 1)}


def test_a_test_failing_only_with_wardenpool_is_an_incompatibility() -> None:
    queue = {
        "test/engine/test_pool.py::T::test_a": "passed",
        "test/engine/test_pool.py::T::b": "failed",
    }
    warden = {
        "test/engine/test_pool.py::T::test_a": "error",
        "test/engine/test_pool.py::T::b": "failed",
    }
    result = compare(queue, warden, [], FILES)
    assert not result.ok
    assert result.regressions == {"test/engine/test_pool.py::T::test_a": "error"}


def test_a_missing_test_is_an_incompatibility() -> None:
    result = compare({"test/engine/test_pool.py::T::test_a": "passed"}, {}, [], FILES)
    assert result.regressions == {"test/engine/test_pool.py::T::test_a": "missing"}


def test_a_listed_test_that_passes_or_is_gone_makes_the_list_stale() -> None:
    passing = compare({LISTED.test: "passed"}, {LISTED.test: "passed"}, [LISTED], FILES)
    assert not passing.ok and passing.stale == [LISTED]
    gone = compare({}, {}, [LISTED], FILES)
    assert not gone.ok and gone.stale == [LISTED]
    other_tier = compare({}, {}, [LISTED], ("test/engine/test_execute.py",))
    assert other_tier.ok  # a difference is checked only in the tier that runs its file


def test_parametrised_ids_name_the_pools_as_the_queuepool_run_does() -> None:
    assert _test_id("t.py::T::test_x[WardenPool-False]") == "t.py::T::test_x[QueuePool-False]"
    assert (
        _test_id("t.py::T::test_x[AsyncWardenPool-True]")
        == "t.py::T::test_x[AsyncAdaptedQueuePool-True]"
    )
    assert _test_id("t.py::WardenPoolTest::test_y") == "t.py::WardenPoolTest::test_y"


def test_the_list_for_test_pool_py_is_short_and_every_entry_says_why() -> None:
    in_test_pool = [d for d in DIFFERENCES if d.test.startswith("test/engine/test_pool.py")]
    assert len(in_test_pool) <= 4
    assert all(len(d.why) > 40 for d in DIFFERENCES)
