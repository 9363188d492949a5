"""One module per job; each has a typed config and a ``run_*`` function the entry points and the pipeline call."""
