"""pmt-live-monitor: live data-quality monitoring for R12860 PMT pre-calibration."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pmt-live-monitor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
