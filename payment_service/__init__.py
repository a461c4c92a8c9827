"""Payment service: charges orders with the simulated provider."""
