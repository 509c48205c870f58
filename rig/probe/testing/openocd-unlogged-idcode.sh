#!/bin/sh
# OpenOCD with its "JTAG tap: … tap/device found: 0x…" lines taken out of its log (stderr), as an ST-Link
# through the hla driver never logs them: examine() must then find the IDCODE some other way. Its stdout,
# the Tcl connection, passes through untouched (fd 3).
{ openocd "$@" 2>&1 1>&3 3>&- | grep --line-buffered -v 'tap/device found' >&2; } 3>&1
