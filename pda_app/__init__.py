"""Warehouse PDA. The core (this package without ``ui``) imports no Kivy and nothing that
python-for-android cannot install: stdlib only."""
