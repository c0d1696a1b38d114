"""The entry point's argument shortcut for a repeated `up` (pure: no engine needed)."""
from containerctl.cli.entry import _simple_up_args


def test_simple_up_args():
    assert _simple_up_args(["up"]) == ("cpu-selftest", None, [])
    assert _simple_up_args(["up", "--profile", "p", "--name", "n", "--set", "a=1",
                            "--set=b=2", "-p", "q"]) == ("q", "n", ["a=1", "b=2"])
    assert _simple_up_args(["up", "--profile=p"]) == ("p", None, [])
    # anything else takes the full CLI path
    for argv in (["up", "--dry-run"], ["up", "--help"], ["up", "--force-recreate"],
                 ["up", "--profile"], ["down"], [], ["up", "extra"]):
        assert _simple_up_args(argv) is None, argv
