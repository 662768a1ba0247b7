#!/bin/sh
# umlutils pre-removal: Debian prerm (`remove`, `upgrade`, ...) and the RPM
# preun scriptlet (0 on erase, 1 on upgrade), which packaging's tests keep
# identical to this file. An upgrade leaves a running switch alone: restarting it
# would cut every guest attached to it.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop uml-switch.service || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable uml-switch.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
