"""The ``lungai`` command line (click). Each capability adds its commands in its own module here."""
