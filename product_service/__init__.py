"""Product service: catalog, categories, the Redis cache and stock reservations."""
