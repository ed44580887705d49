"""crossgroup: pseudonymized cross-brand purchase analytics for a luxury group."""

__version__ = "0.1.0"
