"""An installed app with commands of its own (tests/management/test_app_commands.py)."""
