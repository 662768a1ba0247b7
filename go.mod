module github.com/umlutils/umlutils

go 1.22

require golang.org/x/sys v0.30.0

require github.com/creack/pty v1.1.24
