"""The shared clip pass: decode every wav once, in a worker pool, for every audio stage."""
