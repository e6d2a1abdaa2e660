"""Paper reproductions, one module per paper; each is a sweep spec, a task and a figure function."""
