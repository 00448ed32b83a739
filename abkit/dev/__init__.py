"""Tools for developing and demonstrating abkit, not for analysing experiments:
simulated exports (``abkit simulate``), replays of a paired run, and the Monte Carlo
calibration harnesses the tests and benchmarks use."""
