module github.com/umlutils/umlutils

go 1.22

require (
	github.com/creack/pty v1.1.24
	github.com/ergochat/readline v0.1.3
	golang.org/x/sys v0.30.0
)

require golang.org/x/text v0.9.0 // indirect
