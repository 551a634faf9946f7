"""Code that runs in a TensorBoard job's process (and the fork server that forks jobs)."""
