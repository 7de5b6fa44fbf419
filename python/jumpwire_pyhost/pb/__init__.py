"""Generated from proto/plugin/v1/plugin.proto by make proto-python; do not edit."""
