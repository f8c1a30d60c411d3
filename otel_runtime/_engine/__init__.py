"""Layer 3: the run engine: flows, tasks, futures, task runners."""
