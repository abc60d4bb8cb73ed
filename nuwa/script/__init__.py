"""The maintainer-script engine: POSIX sh parser, interpreter, command models, deferral."""
