"""A demo shop for development: accounts, a catalog and past orders, seeded on request."""
