"""Nachtregister: a digital night register for marinas and business parks."""

__version__ = "0.1.0"
