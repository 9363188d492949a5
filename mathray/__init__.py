"""mathray."""
