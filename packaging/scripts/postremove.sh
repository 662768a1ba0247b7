#!/bin/sh
# umlutils post-removal: Debian postrm and the RPM postun scriptlet, which
# packaging's tests keep identical to this file. The uml-net user stays, as
# system users do: files may still belong to it.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
