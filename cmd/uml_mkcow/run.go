package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/umlutils/umlutils/cow"
)

// usageText is the C uml_mkcow's, word for word (trailing space included).
const usageText = "%[1]s usage: \n\t%[1]s [-f] <COW file> <backing file>\n\t-f forces overwrite of an existing COW file\n"

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := "uml_mkcow"
	if len(args) > 0 {
		prog, args = args[0], args[1:]
	}
	usage := func() int {
		fmt.Fprintf(stderr, usageText, prog)
		return 2
	}
	var opts cow.CreateOptions
	if len(args) > 0 && args[0] == "-f" {
		opts.Force, args = true, args[1:]
	}
	// The C tool silently ignores extra words and takes "-x" for a file
	// name; both are more likely mistakes than intent.
	if len(args) != 2 || (strings.HasPrefix(args[0], "-") && args[0] != "-") {
		return usage()
	}
	if _, err := cow.Create(args[0], args[1], opts); err != nil {
		fmt.Fprintln(stderr, message(prog, err))
		return 1
	}
	return 0
}

// message keeps the C tool's wording where it has one.
func message(prog string, err error) string {
	var ce *cow.Error
	if errors.As(err, &ce) {
		switch ce.Op {
		case cow.OpCreateCOW:
			return fmt.Sprintf("open COW file: %s: %s", ce.Path, ce.Reason())
		case cow.OpStatBacking:
			return fmt.Sprintf("write_cow_header: backing file '%s': %s", ce.Path, ce.Reason())
		}
	}
	return fmt.Sprintf("%s: %v", prog, err)
}
