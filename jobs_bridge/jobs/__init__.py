"""Background jobs: specs, the queue and its limits, logs and metrics, sweeps."""
