"""The command line. `entry` is the console script: it answers the plain forms of `up`,
`exec-stage` and `status` through `fast` (no CLI framework imported) and hands everything else to
the typer app in `app`, which registers the command groups (`lifecycle`, `profile`, `stages`,
`image`, `report`, `doctor`, `cluster`). `options` holds the option tables that both the typer
commands and the fast parser are generated from; `failure` is the one error printer.

Nothing is imported here: `entry` must start without typer."""
