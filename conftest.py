"""Collection rules for the doctests of the package (``--doctest-modules`` over ``lstmkit``)."""

# the deprecated aliases of moved modules: importing one warns (tests/runs/test_deprecated.py checks them)
collect_ignore = ["lstmkit/train/config.py", "lstmkit/train/checkpoint.py", "lstmkit/train/registry.py",
                  "lstmkit/train/json_output.py", "lstmkit/train/plots.py", "lstmkit/train/generate.py",
                  "lstmkit/train/estimators.py", "lstmkit/train/tasks"]
