"""Training: the loop as plain functions (``loop.py``)."""
