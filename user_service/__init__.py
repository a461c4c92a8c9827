"""User service: accounts, login, JWT and JWKS, service tokens."""
