"""Scores on held-out faces (scoring), calibration, reports and figures, perturbations."""
