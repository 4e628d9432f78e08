#!/bin/bash
# Slurm batch script of the PMT live monitor (submitted by `remote-monitor submit`).
# Everything user-supplied arrives as arguments ("$@"), never spliced into this script.
#SBATCH --job-name=pmt-monitor
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --output=pmt-monitor-%j.log
# Slurm sends SIGTERM to the batch shell 120 s before the time limit; `exec` below makes the monitor
# *be* the batch shell, so it receives the signal, finishes the points in flight and exits 0.
#SBATCH --signal=B:TERM@120
set -euo pipefail
exec remote-monitor run "$@"
