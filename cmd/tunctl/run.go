package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"text/tabwriter"

	"github.com/umlutils/umlutils/tuntap"
)

// optstring of the C tunctl ("bd:f:t:u:g:") plus our -n and -l.
const optstring = "bd:f:t:u:g:nl"

// usage is the C tool's text, byte for byte, then a paragraph for the
// options it lacks, so scripts that match the original's lines still do.
func usage(w io.Writer, name string) {
	fmt.Fprintf(w, "Create: %s [-b] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]\n", name)
	fmt.Fprintf(w, "Delete: %s -d device-name [-f tun-clone-device]\n\n", name)
	fmt.Fprint(w, "The default tun clone device is /dev/net/tun - some systems use\n/dev/misc/net/tun instead\n\n")
	fmt.Fprint(w, "-b will result in brief output (just the device name)\n")
	fmt.Fprint(w, usageExtra)
}

const usageExtra = `
-n creates a tun (IP) device instead of a tap (Ethernet) device
-l lists the tun/tap devices with owner, group and persistence (-b: names only)
`

// noID is what the C tool keeps in a uid_t or gid_t it was not given:
// (uid_t)-1, which "-u -1" also produces.
const noID = 0xFFFFFFFF

// run is tunctl with args[0] the program name, as the C tool's messages
// print it.
func run(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	name := "tunctl"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	fail := func() int { usage(stderr, name); return 1 }

	var (
		brief, del, list bool
		kind             = tuntap.Tap
		dev              = ""
		clone            = tuntap.CloneDevice
		owner, group     = uint32(noID), uint32(noID)
	)
	_, posix := os.LookupEnv("POSIXLY_CORRECT")
	opts, operands, errMsg := getopt(args, optstring, posix)
	for _, o := range opts {
		switch o.name {
		case 'b':
			brief = true
		case 'd':
			del, dev = true, o.arg
		case 'f':
			clone = o.arg
		case 't':
			dev = o.arg
		case 'n':
			kind = tuntap.Tun
		case 'l':
			list = true
		case 'u', 'g':
			id, ok := lookupID(o.name, o.arg)
			if !ok {
				if o.name == 'u' {
					fmt.Fprintf(stderr, "'%s' is neither a username nor a numeric uid.\n", o.arg)
				} else {
					fmt.Fprintf(stderr, "'%s' is neither a groupname nor a numeric group.\n", o.arg)
				}
				return fail()
			}
			if o.name == 'u' {
				owner = id
			} else {
				group = id
			}
		}
	}
	if errMsg != "" {
		fmt.Fprintf(stderr, "%s: %s\n", name, errMsg)
		return fail()
	}
	if len(operands) > 0 {
		return fail()
	}
	if list {
		return listDevices(stdout, stderr, name, brief)
	}
	// The C tool copies at most IFNAMSIZ-1 bytes of the name (strncpy)
	// and so creates, or deletes, a device the user did not name: with
	// -d, another device that shares the first 15 bytes. Refuse instead.
	if len(dev) > syscall.IFNAMSIZ-1 {
		fmt.Fprintf(stderr, "%s: '%s' is longer than %d bytes, the longest interface name; nothing done\n", name, dev, syscall.IFNAMSIZ-1)
		return 1
	}
	if del {
		return deleteDevice(stdout, stderr, clone, dev, kind)
	}
	return createDevice(stdout, stderr, clone, dev, kind, owner, group, brief)
}

// lookupID resolves a user ('u') or group ('g') given by name first, then
// as a number in strtol's base-0 syntax, converted to a uid_t/gid_t as C
// does.
func lookupID(kind byte, s string) (uint32, bool) {
	var id string
	if kind == 'u' {
		if u, err := user.Lookup(s); err == nil {
			id = u.Uid
		}
	} else if g, err := user.LookupGroup(s); err == nil {
		id = g.Gid
	}
	if id != "" {
		n, err := strconv.ParseUint(id, 10, 32)
		return uint32(n), err == nil
	}
	n, ok := strtol(s)
	return uint32(n), ok
}

// report prints the C tool's "Failed to open" or "OP: strerror" line.
func report(stderr io.Writer, err error) int {
	var pe *os.PathError
	var ie *tuntap.IoctlError
	switch {
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "Failed to open '%s' : %s\n", pe.Path, strerror(pe.Err))
	case errors.As(err, &ie):
		op := ie.Op
		if op != "TUNSETIFF" {
			// The C tool labels every later ioctl's failure so.
			op = "TUNSETPERSIST"
		}
		fmt.Fprintf(stderr, "%s: %s\n", op, strerror(ie.Err))
	default:
		fmt.Fprintf(stderr, "tunctl: %v\n", err)
	}
	return 1
}

func createDevice(stdout, stderr io.Writer, clone, dev string, kind tuntap.Kind, owner, group uint32, brief bool) int {
	// Without -u or -g the device is owned by the caller, as before
	// TUNSETGROUP existed.
	if owner == noID && group == noID {
		owner = uint32(os.Geteuid())
	}
	uid, gid := int64(owner), int64(group)
	if owner == noID {
		uid = tuntap.NoID
	}
	if group == noID {
		gid = tuntap.NoID
	}
	got, err := tuntap.Create(clone, dev, kind, uid, gid)
	if err != nil {
		return report(stderr, err)
	}
	if brief {
		fmt.Fprintln(stdout, got)
		return 0
	}
	msg := fmt.Sprintf("Set '%s' persistent and owned by", got)
	if owner != noID {
		msg += fmt.Sprintf(" uid %d", int32(owner))
	}
	if group != noID {
		msg += fmt.Sprintf(" gid %d", int32(group))
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

// deleteDevice clears persistence. Unlike the C tool, which always attaches
// as a tap (and so fails on tun devices), it uses the device's own kind;
// like it, a name that does not exist is created and dropped at once and
// reported as done, so cleanup scripts that delete what may be gone keep
// their exit status 0.
func deleteDevice(stdout, stderr io.Writer, clone, dev string, kind tuntap.Kind) int {
	if info, err := tuntap.Lookup(dev); err == nil {
		kind = info.Kind
	}
	q, err := tuntap.Attach(clone, dev, kind)
	if err != nil {
		return report(stderr, err)
	}
	defer q.Close()
	if err := q.SetPersist(false); err != nil {
		return report(stderr, err)
	}
	fmt.Fprintf(stdout, "Set '%s' nonpersistent\n", q.Name())
	return 0
}

func listDevices(stdout, stderr io.Writer, name string, brief bool) int {
	devs, err := tuntap.List()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if brief {
		for _, d := range devs {
			fmt.Fprintln(stdout, d.Name)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tPERSIST\tOWNER\tGROUP")
	for _, d := range devs {
		persist := "no"
		if d.Persist {
			persist = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, d.Kind, persist, idString(d.Owner), idString(d.Group))
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}

func idString(id int64) string {
	if id == tuntap.NoID {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}
