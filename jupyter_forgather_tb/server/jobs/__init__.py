"""The job life cycle: the manager, the job record, its registry, launches, stops, restores."""
