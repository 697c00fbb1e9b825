"""Draft-head training tooling for Gumiho-TS (Gumiho / EAGLE-2 / Medusa heads)."""

__version__ = "0.1.0"
