"""Pure JAX simulation of the access model: parameters, mechanisms, time loop, reducers.

Imports jax only. Labels, files and scenarios live in `forecast`.
"""
from kernels.params import (NAMES, SPECS, SPEC_BY_NAME, ParamSpec, Params, Prior, constrain, n_entries,
                            param_shape, params_from, sample_params, unconstrain)
from kernels.layout import N_TIERS, OUTPUT_BY_NAME, OUTPUTS, RATIO_OUTPUTS, OutputSpec, SeriesLayout
from kernels.month import Outputs
from kernels.simulate import TRACE_COUNT, Carry, advance, output_sizes, run_chunk, run_paths, start
from kernels.menu import CLASSES, N_CLASSES
from kernels.state import Noise, State

__all__ = [
    "NAMES", "SPECS", "SPEC_BY_NAME", "ParamSpec", "Params", "Prior", "constrain", "n_entries", "param_shape", "params_from",
    "sample_params",
    "unconstrain", "N_TIERS", "OUTPUTS", "OUTPUT_BY_NAME", "TRACE_COUNT", "OutputSpec", "Outputs", "output_sizes",
    "RATIO_OUTPUTS", "SeriesLayout",
    "run_chunk", "run_paths", "Noise", "State", "CLASSES", "N_CLASSES", "Carry", "advance", "start",
]
