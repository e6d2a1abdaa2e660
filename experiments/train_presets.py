"""Presets of ``xbarsim train`` (kept free of heavy imports so the CLI parser builds fast).

"default" is the main job (the README explains the choice); "smoke" runs in seconds
for the tests; "aihwkit" is the configuration of the reference-simulator comparison
(aihwkit's default SoftBounds device and IO, batch 10, constant lr 0.5).
"""
PRESETS: dict[str, dict] = {
    "default": dict(epochs=8, batch_size=10, lr=0.1, lr_schedule="step", lr_step_epochs=3, lr_gamma=0.5),
    # smoke: one 64-unit hidden layer and 200 states, so it learns within 400 batches
    "smoke": dict(epochs=2, batch_size=10, lr=0.5, lr_schedule="constant", hidden=(64,), train_subset=2000,
                  test_subset=500, device_params={"dw_min": 0.005}),
    "aihwkit": dict(epochs=2, batch_size=10, lr=0.5, lr_schedule="constant"),
}

