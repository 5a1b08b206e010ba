"""An installed app defining a command name another app uses."""
