"""The suite's own schedule (tests/scheduling.py): the costliest modules go to the workers first."""

from tests.scheduling import costliest_first


def test_known_modules_go_longest_first_and_equal_ones_keep_their_order():
    ids = ["a/test_x.py::t1", "a/test_y.py::t1", "a/test_z.py::t1", "a/test_w.py::t1"]
    costs = {"a/test_x.py": 5.0, "a/test_y.py": 50.0, "a/test_z.py": 5.0, "a/test_w.py": 20.0}
    assert costliest_first(ids, costs) == ["a/test_y.py", "a/test_w.py", "a/test_x.py", "a/test_z.py"]


def test_an_unknown_module_costs_its_folders_mean_per_test_times_its_tests():
    # tests/i: 100 s over 2 known tests, 50 s a test; the new module's 3 tests: 150 s, before the 100 s one.
    ids = ["i/test_old.py::a", "i/test_old.py::b", "u/test_fast.py::a"] + [f"i/test_new.py::{n}" for n in "abc"]
    costs = {"i/test_old.py": 100.0, "u/test_fast.py": 0.5}
    assert costliest_first(ids, costs) == ["i/test_new.py", "i/test_old.py", "u/test_fast.py"]
