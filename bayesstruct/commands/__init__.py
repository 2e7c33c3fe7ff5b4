"""Sub-commands of the ``bayesstruct`` command line, one module each (see :data:`bayesstruct.cli.COMMAND_MODULES`)."""
