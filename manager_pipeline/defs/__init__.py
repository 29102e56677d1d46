"""The Dagster layer: thin ops, jobs, sensors and resources over the plain modules."""
