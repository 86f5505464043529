"""The terminal UI (``imagent chat``): see app.py."""
