// Package lab reads, plans and runs virtual labs written for Netkit 2.8,
// Netkit-JH and Kathará on User-Mode Linux guests.
//
// This file documents the lab-directory parser (Load, ParseConf, ParseDep,
// MACFor); see umlab(1) for the user-facing format reference.
//
// # A lab directory
//
//	lab.conf          machines, interfaces, options (optional only with LoadOptions.Force)
//	lab.dep           optional start order in make syntax: "pc2: router pc1"
//	MACHINE/          copied over the guest's / on first boot
//	MACHINE.startup   run in the guest at the end of its boot
//	shared/, shared.startup, _test/   never machines
//
// A directory with neither lab.conf nor lab.dep is refused (ErrNotLab), as
// Netkit's lstart and Kathará refuse it without -F.
//
// # lab.conf
//
// Lines are trimmed; blank lines and lines starting with '#' are comments.
//
//   - MACHINE[N]=DOMAIN: interface ethN of MACHINE is on collision domain
//     DOMAIN. Kathará's DOMAIN/MAC gives the interface that MAC; Netkit
//     2.8's tap,HOST_ADDR,GUEST_ADDR (domain "tap") and Netkit-JH's
//     DOMAIN,HOST_ADDR,GUEST_ADDR make a tap interface (Interface.Tap).
//   - MACHINE[OPTION]=VALUE: an option (see KnownOptions; the table is
//     extended with RegisterOption). mem (MB; Kathará's b/k/m/g suffixes
//     too), cpus (Kathará's fractions round up to whole CPUs), image and
//     Netkit's model-fs, kernel, exec, sysctl (KEY=VALUE, dotted key),
//     env (KEY=VALUE), append are taken into Machine's fields; every option
//     line is also kept raw in Machine.Options. Unknown and unsupported
//     options are warnings, not errors.
//   - LAB_DESCRIPTION, LAB_VERSION, LAB_AUTHOR, LAB_EMAIL, LAB_WEB,
//     LAB_NAME: metadata. machines= (Netkit 2.8) or LAB_MACHINES= (JH),
//     separated by spaces or commas: the lab's machines and start order;
//     lab.conf lines for other machines are then ignored with a warning, as
//     Netkit ignores them.
//
// Values may be quoted with " or '; a quoted value ends at its closing
// quote, so a '#' inside it is kept. After a value, white space and '#'
// start a comment (Kathará's rule; a '#' right after a character belongs to
// the value).
//
// A line that starts as an assignment (a word then '[') must be well
// formed: a closing ']', '=' right after it, an interface number without a
// leading zero (0..255) or an option name, a safe machine name, a valid
// domain name, MAC, tap address, mem, cpus, sysctl or env value; an
// interface defined twice is an error too. Anything else is ignored with a
// warning. Errors are *ParseError values naming file and line; Load then
// returns no Lab.
//
// Names: in every format, machine and collision-domain names are 1 to 63
// bytes of letters, digits, '_', '.' and '-', not starting with '-' or '.',
// without "..", since they become file names and words of UML's command
// line (which splits on ',', ':', '=' and spaces); "shared" and "_test" are
// not machine names. Kathará labs also follow Kathará's own rules (machines
// [a-z0-9_]{1,30}, domains of letters, digits and '_', interfaces numbered
// from 0 without gaps, one interface per domain and machine); Netkit-JH
// machine names are hostnames (letters, digits, '-' inside).
//
// # Machines and their order
//
// If machines=/LAB_MACHINES= is given, it is the machine list, in its order.
// Otherwise the machines are those lab.conf names, in order of first
// appearance, followed - in the Netkit formats only, since Kathará takes its
// machines from lab.conf alone - by machines that exist only as a directory
// or a NAME.startup file, sorted (hidden directories, CVS/, shared and _test
// excepted; a directory whose name is not a valid machine name is skipped
// with a warning).
//
// # Format detection
//
// Load decides the dialect from the lines only one of them writes
// (Conf.DetectFormat), and says which line decided in Lab.FormatReason:
//
//   - Kathará: LAB_NAME=, a MAC after '/', a trailing "# comment", and the
//     options image, cpus, sysctl, env, bridged, port, ipv6, shell,
//     num_terms, ulimit, privileged.
//   - Netkit-JH: LAB_MACHINES=, [mount], a tap interface on a domain other
//     than "tap".
//   - Netkit 2.8: machines=, [hostwd], a "tap,..." interface.
//   - Either Netkit: vstart's options kernel, model-fs, filesystem, append,
//     con0, con1, xterm, hostlab.
//
// Kathará's markers are counted against all Netkit ones; the larger side
// wins, Kathará on a tie (its markers are syntax Netkit could not have
// meant). Among Netkit, JH wins if it has more markers than 2.8. Markers of
// more than one dialect give a warning listing them.
//
// A lab.conf with no marker at all (only interfaces, mem and exec, as many
// older labs and some Kathará exercises are written) is read as Netkit 2.8:
// it is the dialect the others extend, and the most permissive one
// (interface gaps allowed, machines from directories too), so any lab
// valid in another dialect also loads; for such a lab, Netkit 2.8 and JH
// behave the same (same MAC recipe, same shared/ handling).
// LoadOptions.Format overrides detection.
//
// # MAC addresses
//
// An interface without an explicit MAC gets MACFor(format, machine, N):
// Netkit's SHA-1 recipe for both Netkit dialects, the MD5 recipe of
// Kathará's network plugin for Kathará (see MACFor). Both are stable across
// restarts and locally administered unicast.
//
// # lab.dep
//
// make(1) rules "TARGET...: PREREQUISITE...", '#' comments, '\' line
// continuations; rules for one target add up. Names that are not machines
// of the lab are ignored with a warning. Lab.Waves orders a selection into
// waves of machines whose prerequisites are all started; a cycle among the
// selected machines is a *CycleError naming them (Load only warns about a
// cycle, so commands that do not start machines still work).
package lab
