"""One module per resource; each is thin and calls the read functions of `projections`."""
