"""The simulated test stand: writes WaveDump files and their truth."""
