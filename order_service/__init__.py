"""Order service: cart, orders and the saga, timeline, analytics."""
