"""pmt-live-monitor: live data-quality monitoring for R12860 PMT pre-calibration."""

__version__ = "0.1.0"
