"""Memory layout shared by the device kernels and the models that plug into them.

Per-cell parameters live in one float32 array ``cell`` of shape ``(rows, cols, N_CELL)``,
a cell's parameters adjacent so that one pulse touches one cache line.  The first four
planes mean the same for every model; ``C_SLOPE_UP`` / ``C_SLOPE_DOWN`` are the model's
own two per-cell parameters (each model's docstring says what they hold).

Model-wide scalars are a float64 vector ``g``: the first ``G_MODEL_PARAMS`` slots are
common to every pulsed model, the rest belong to the model (its ``kernel_params``).
"""
C_SCALE_UP, C_SCALE_DOWN, C_B_MAX, C_B_MIN = 0, 1, 2, 3
C_SLOPE_UP, C_SLOPE_DOWN = 4, 5      # the model's two per-cell parameters (per direction)
C_DECAY, C_DIFFUSION = 6, 7          # per-call decay factor (1 = none), diffusion std
N_CELL = 8

G_DW_MIN_STD, G_MULT_NOISE, G_WRITE_NOISE = 0, 1, 2
G_MODEL_PARAMS = 3  # first slot of a model's own scalars
