"""Sweeps: the spec (TOML -> points), the HDF5 store, the task registry and the local/Dask executors."""
