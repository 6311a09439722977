"""One module per CLI command; each imports only typer and the standard library at load."""
