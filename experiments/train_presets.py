"""Presets of ``xbarsim train`` (kept free of heavy imports so the CLI parser builds fast).

"default" is the main job (the README explains the choice); "smoke" runs in seconds
for the tests; "aihwkit" is the configuration of the reference-simulator comparison
(aihwkit's default SoftBounds device and IO, batch 10, constant lr 0.5).
"""
PRESETS: dict[str, dict] = {
    # default: aihwkit's SoftBounds cell (1200 states, 30 % d2d and c2c noise), mapped onto a
    # wider weight range (w = +-2, dw_min = 0.003333: the same number of states); lr 0.5
    # halved every 2 epochs, 8 epochs.  README "Why these defaults" explains why.
    "default": dict(epochs=8, batch_size=10, lr=0.5, lr_schedule="step", lr_step_epochs=2, lr_gamma=0.5,
                    device_params={"w_max": 2.0, "w_min": -2.0, "dw_min": 0.003333}),
    # smoke: one 64-unit hidden layer and 200 states, so it learns within 400 batches
    "smoke": dict(epochs=2, batch_size=10, lr=0.5, lr_schedule="constant", hidden=(64,), train_subset=2000,
                  test_subset=500, device_params={"dw_min": 0.005}),
    "aihwkit": dict(epochs=2, batch_size=10, lr=0.5, lr_schedule="constant"),
}

