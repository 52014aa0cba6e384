"""bo: the composition root. Reads the environment, wires the packages, runs the CLI."""
