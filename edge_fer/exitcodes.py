"""Process exit codes of ``edge-fer``, shared by the commands and the systemd unit.

The unit's ``RestartPreventExitStatus=`` lists the codes that a restart cannot fix (a bad command line,
a bad config, a model that does not load), so systemd stops and shows the error instead of looping.
"""

OK = 0  # clean stop (SIGTERM, end of a file source, --max-frames reached)
FAILURE = 1  # the work failed for a reason the command reports (every camera failed; images that cannot be read)
USAGE = 2  # bad command line (argparse)
UNAVAILABLE = 69  # EX_UNAVAILABLE: a model file exists but cannot be loaded (corrupt, wrong kind)
TEMPFAIL = 75  # EX_TEMPFAIL: stopped cleanly, but MQTT messages were lost (dropped, or undelivered in memory mode)
SOFTWARE = 70  # EX_SOFTWARE: an unexpected internal error (a bug); the traceback goes to stderr (the journal)
CONFIG = 78  # EX_CONFIG: the config file is missing or invalid; every problem is printed
FORCED = 128  # plus the signal number: a second SIGINT/SIGTERM forced an immediate exit (130, 143)

NO_RESTART = (USAGE, UNAVAILABLE, CONFIG)
