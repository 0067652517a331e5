"""Tell people what the pipeline decided (gate failed, new champion, retrain advised) through a chat webhook."""
