"""Strategy resolution, config, losses/optimizers/schedules, the fit loop; see tfseti.train.cli."""
