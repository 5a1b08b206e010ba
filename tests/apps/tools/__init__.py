"""An installed app with commands of its own (tests/cli/test_app_commands.py)."""
