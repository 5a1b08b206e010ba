"""An installed app with nothing but a receivers module (tests of framework.setup)."""
