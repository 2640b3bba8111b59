"""Private: the synthetic-data generator behind ``deid.synth`` (its documented front door)."""
