"""Request and response bodies of the REST contract, one module per resource."""
