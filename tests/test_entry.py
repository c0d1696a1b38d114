"""The entry point's fast parser for a repeated `up` (pure: no engine needed): cli.fast.parse
reads up's option table (cli.options.UP), the one the typer command is generated from."""
from containerctl.cli.fast import parse
from containerctl.cli.options import UP, defaults


def _up(**kw):
    return ("up", dict(defaults(UP), **kw))


def test_plain_up_args():
    assert parse(["up"]) == _up()
    assert parse(["up", "--profile", "p", "--name", "n", "--set", "a=1", "--set=b=2"]) == \
        _up(profile="p", name="n", set_=["a=1", "b=2"])
    assert parse(["up", "--profile=p"]) == _up(profile="p")
    assert parse(["up", "-p", "q"]) == _up(profile="q")
    # parsed with their meaning; noop_up leaves them to the full `up`
    assert parse(["up", "--dry-run"]) == _up(dry_run=True)
    assert parse(["up", "--force-recreate"]) == _up(force_recreate=True)
    # anything else takes the full CLI path
    for argv in (["up", "--help"], ["up", "--profile"], ["down"], [], ["up", "extra"],
                 ["up", "-p=x"], ["up", "--dry-run=1"], ["up", "--", "x"],
                 ["up", "--profile", "a", "-p", "b"]):     # given twice: the CLI's rules apply
        assert parse(argv) is None, argv
