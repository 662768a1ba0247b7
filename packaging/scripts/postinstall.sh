#!/bin/sh
# umlutils post-install: Debian postinst (`configure [OLD-VERSION]`) and the
# RPM post scriptlet (1 on install, 2 on upgrade), which packaging's tests
# keep identical to this file.
set -e
first=no
case "$1" in
configure) [ -n "$2" ] || first=yes ;;
1) first=yes ;;
esac
# The switch's user and /run/uml-utilities now; sysusers.d and tmpfiles.d
# keep them there across reboots.
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers umlutils.conf || true
elif ! getent passwd uml-net >/dev/null 2>&1; then
	useradd --system --user-group --home-dir /nonexistent --no-create-home \
		--shell /usr/sbin/nologin --comment "User-mode Linux network switch" uml-net || true
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create umlutils.conf || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
# Replacing uml-utilities whose init script started the system switch at
# boot: start ours at boot instead, and now.
if [ "$first" = yes ] && command -v systemctl >/dev/null 2>&1 &&
	ls /etc/rc[2345].d/S*uml-utilities >/dev/null 2>&1; then
	systemctl enable uml-switch.service || true
	if [ -d /run/systemd/system ]; then
		systemctl start uml-switch.service || true
	fi
fi
exit 0
