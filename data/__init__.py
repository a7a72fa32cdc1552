"""Shipped data (element tables, quickstart samples), installed as the package data ``matlib.shipped``."""
