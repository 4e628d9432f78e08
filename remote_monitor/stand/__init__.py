"""The test stand: layout of its data tree and the monitor's configuration (above the physics)."""
