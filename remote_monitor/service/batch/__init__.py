"""Batch schedulers (Slurm, Fujitsu PJM) that run the monitor and reprocessing as jobs."""
