"""Load generators: each runs in processes of its own and prints its figures as JSON."""
