"""TensorBoards over job outputs, run by the platform and proxied behind the Hub's login."""
