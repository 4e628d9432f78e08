"""What the monitor job runs near its time limit: `python -m remote_monitor.service.batch.resubmit SPEC`
submits the next monitor job from <out>/jobs/monitor_job.json; that job continues where this one stopped."""

from __future__ import annotations

import sys

from remote_monitor.service.batch.jobs import main

if __name__ == "__main__":
    sys.exit(main())
