"""The command line.

  entry      the console script: the plain forms of `up`, `exec-stage` and `status` are answered
             by `fast` without importing typer; everything else goes to `app.main`
  fast       the fast parser and the no-op `up`; it reads the tables in `options`
  options    the option tables of up / exec-stage / status, from which their typer commands are
             generated (so the two parsers cannot differ: tests/test_cli_options.py)
  failure    the one error printer (error: cause / fix: what to do, the exit code)
  app        the typer app; it registers the groups: profile, lifecycle (up, down, ps, logs,
             exec, shell, restart), image, stages (run, exec-stage, status, stages), report
             (report, results), doctor, cluster
  common     the rich console and the engine the groups share

Nothing is imported here: `entry` must start without typer."""
