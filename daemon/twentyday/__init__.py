"""twentyday: capture personal-account messages as sealed federal records (44 U.S.C. 2911)."""

__version__ = "0.1.0"
