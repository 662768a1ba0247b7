module github.com/umlutils/umlutils

go 1.22

require golang.org/x/sys v0.30.0

require (
	github.com/google/gopacket v1.1.19
	golang.org/x/net v0.0.0-20190620200207-3b0461eec859 // indirect
)
