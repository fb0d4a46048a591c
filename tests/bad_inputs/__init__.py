"""The bad-input corpus of issue 17: one YAML file per case (see :mod:`tests.bad_inputs.harness`)."""
