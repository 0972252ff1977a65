"""Pure JAX simulation of the access model: parameters, mechanisms, time loop, reducers.

Imports jax only. Labels, files and scenarios live in `forecast`.
"""
from kernels.params import NAMES, SPECS, SPEC_BY_NAME, ParamSpec, Params, Prior, n_entries, param_shape, sample_params
from kernels.simulate import N_TIERS, OUTPUTS, OutputSpec, TRACE_COUNT, output_sizes, run_chunk
from kernels.state import State

__all__ = [
    "NAMES", "SPECS", "SPEC_BY_NAME", "ParamSpec", "Params", "Prior", "n_entries", "param_shape", "sample_params",
    "N_TIERS", "OUTPUTS", "OutputSpec", "TRACE_COUNT", "output_sizes", "run_chunk", "State",
]
