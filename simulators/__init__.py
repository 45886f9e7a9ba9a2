"""Devices without hardware, built on the interfaces the real adapters implement."""
