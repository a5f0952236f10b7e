"""The model gateway: the server's own HTTP service on each sandbox's loopback that holds the
model providers' keys, forwards an agent's model calls, and meters their tokens.

``prices`` (the price table) has no I/O and is imported by other parts (framework adapters
charge token usage with it when no gateway is configured).
"""
