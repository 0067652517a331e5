"""What the tests share, one module per concern."""
