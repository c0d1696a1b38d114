"""The test pipeline. A stage is data (defs/*.yaml: a Jinja2 bash script templated from the
profile, its prerequisites, a timeout, when it applies, and the parser that checks its output).

  catalog.py   which stages exist, in order: defs/*.yaml + ./stages + ~/.config (stagedef.py is
               the model each file is validated with)
  context.py   what a script is rendered from (the profile, the options, the probed checkout)
  render.py    definition + context -> the stage's bash script (values quoted in one prologue)
  executor.py  exec a script in a session of its own, stream it, kill it whole at the end
  state.py     what passed in a container (the container's copy is the truth, a home caches it)
  locks.py     one run per container, whichever home asks; the run's watchdog
  runner.py    the Pipeline: select, preflight, run (variants included), record
  checks.py    parse a stage's output and check it (markers.py: the line protocol it reads)
  source.py    the FlagCX tree the build stage uses (--source)"""
