"""Ray actors over the pure library: energy coordinators and partitioned relaxation workers."""
