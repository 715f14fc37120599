"""The gate: marker ceilings, baselines, fingerprints, verdicts and the pass/fail outcome."""
