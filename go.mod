module github.com/umlutils/umlutils

go 1.22

require (
	github.com/creack/pty v1.1.24
	github.com/ergochat/readline v0.1.3
	github.com/google/gopacket v1.1.19
	golang.org/x/sys v0.30.0
)

require (
	golang.org/x/net v0.0.0-20190620200207-3b0461eec859 // indirect
	golang.org/x/text v0.9.0 // indirect
)
