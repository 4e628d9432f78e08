#!/bin/bash
# Slurm job array: task i reprocesses the scan directory on line i of the task list (first argument).
# Submitted by `remote-monitor reprocess --slurm ARCHIVE --out OUT`; remaining arguments go to the CLI.
#SBATCH --job-name=pmt-reprocess
#SBATCH --cpus-per-task=1
#SBATCH --mem=4G
#SBATCH --output=pmt-reprocess-%A_%a.log
set -euo pipefail
task_list="$1"
shift
scan_dir="$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$task_list")"
exec remote-monitor reprocess --scan-dir "$scan_dir" "$@"
