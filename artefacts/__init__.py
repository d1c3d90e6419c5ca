"""What trainings leave behind: the environment in their logs, their per-epoch score curves."""
