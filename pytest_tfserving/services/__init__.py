"""Session services that are not servers' backends: the server pool, Redis, the prediction cache."""
