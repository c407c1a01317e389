"""X-ray pneumonia classifier training worker. Run `python -m trainer --help`; protocol in README.md."""
__version__ = "0.1.0"
