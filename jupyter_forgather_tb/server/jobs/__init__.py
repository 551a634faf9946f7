"""The job life cycle: the manager, the job table, runs and their launcher, idle watch, restores."""
