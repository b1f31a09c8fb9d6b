"""The ground every process stands on: errors, settings, logs, metrics."""
