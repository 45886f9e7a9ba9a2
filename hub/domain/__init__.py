"""Pure hub rules: no database, network or web imports, so they are tested without a server."""
