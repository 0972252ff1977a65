"""The engine: a scenario (or several, paired) -> exact bands.

run: `run` / `compare`, their checks, devices and `save`; lockstep: the population
advanced in lockstep, block by block, and the host's exact order statistics; quantiles:
exact ranks; checkpoint: resumable state between blocks; dataset: kernel arrays -> a
labelled xarray.Dataset; files: atomic writes, output checks, one writer per output."""
