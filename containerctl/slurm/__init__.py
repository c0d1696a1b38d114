"""containerctl on a Slurm cluster: an inventory that says `scheduler: slurm` (inventory.py),
slurm commands through a submit host (submit.py), and the backend that allocates once, runs each
stage as a job step and launches ranks with srun (backend.py). The CLI routes `cluster run`,
`cluster exec-stage`, `cluster ps` and `cluster export` here when the inventory says so."""
