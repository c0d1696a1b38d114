"""Results: parsers for what the stages print (parsers), the on-disk store of runs and stage
records (store), performance references (references). Submodules are imported on use so that
`import containerctl.results` costs nothing."""
