"""Differential fuzz targets of the native entry points (see docs/hardening.md)."""
