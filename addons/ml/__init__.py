"""The ML tool bundle: one module per tool, switched on and tuned under `ml:` in a profile."""
