"""Presets of ``xbarsim train`` (kept free of heavy imports so the CLI parser builds fast).

"default" is the main job (the README explains the choice); "smoke" runs in seconds
for the tests; "aihwkit" is the configuration of the reference-simulator comparison
(aihwkit's default SoftBounds device and IO, batch 10, constant lr 0.5).
"""
PRESETS: dict[str, dict] = {
    # default: aihwkit's SoftBounds cell (1200 states, 30 % d2d and c2c noise), mapped onto a
    # 2.5x wider weight range (w = +-1.5, dw_min = 0.0025: same number of states); lr 0.5
    # halved every 2 epochs, 6 epochs.  README "The main job" explains why.
    "default": dict(epochs=6, batch_size=10, lr=0.5, lr_schedule="step", lr_step_epochs=2, lr_gamma=0.5,
                    device_params={"w_max": 1.5, "w_min": -1.5, "dw_min": 0.0025}),
    # smoke: one 64-unit hidden layer and 200 states, so it learns within 400 batches
    "smoke": dict(epochs=2, batch_size=10, lr=0.5, lr_schedule="constant", hidden=(64,), train_subset=2000,
                  test_subset=500, device_params={"dw_min": 0.005}),
    "aihwkit": dict(epochs=2, batch_size=10, lr=0.5, lr_schedule="constant"),
}

