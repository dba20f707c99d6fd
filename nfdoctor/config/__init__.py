"""Config: discovery, the typed model, the loader (the only YAML reader), the template."""
