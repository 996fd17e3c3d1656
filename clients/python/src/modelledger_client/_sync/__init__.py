# Generated from ../_async by clients/python/generate_sync.py: do not edit.
