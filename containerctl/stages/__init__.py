"""The test pipeline. A stage is data (defs/*.yaml: a Jinja2 bash script templated from the
profile, its prerequisites, a timeout, when it applies, and the parser that checks its output);
runner.py executes stages in order inside the container, records results and keeps state."""
