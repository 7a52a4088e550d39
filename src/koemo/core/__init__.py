"""Stage plumbing every stage script imports: the runner, errors, atomic writer, metrics writer, params, device; and the shared stores (shards, hub weights, progress)."""
