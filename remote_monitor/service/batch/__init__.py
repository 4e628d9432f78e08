"""Batch schedulers (Slurm) that run the monitor and reprocessing as jobs."""
