"""Stage 5: pure functions from run outcomes to tables, figures, observations and checks."""
