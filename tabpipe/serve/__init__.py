"""What the BentoML service needs, and nothing from training: manifest, model store, requests, guard, log."""
