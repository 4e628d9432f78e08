"""The running monitor: watch -> ready points -> workers -> store -> publish; commands, moves, HTTP."""
