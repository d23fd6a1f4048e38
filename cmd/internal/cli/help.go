package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// EnvPrefix names the environment variable of every flag: -some-flag is also read from
// MESHKAFKA_SOME_FLAG, in every binary (one configuration story: the same flag name means the
// same setting everywhere). Precedence: the command line, then MESHKAFKA_*, then a flag's
// documented Rafka alias (RAFKA_*), then its default.
const EnvPrefix = "MESHKAFKA_"

// EnvName is the environment variable read for the flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Help is what -h/-help/--help prints (to Out, and the binary then exits 0): one line saying
// what the program is, its usage line, examples, and every flag with its variable.
type Help struct {
	Summary  string   // one line: what the program is
	Usage    string   // e.g. "gateway [flags]"
	Examples []string // command lines, one each
	Out      io.Writer
}

// IsHelp reports whether args ask for help (-h, -help, --help anywhere before "--").
func IsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help", "--h":
			return true
		}
	}
	return false
}

// PrintHelp writes h and fs's flags to w.
func PrintHelp(w io.Writer, fs *flag.FlagSet, h Help) {
	fmt.Fprintf(w, "%s: %s\n\nusage: %s\n", fs.Name(), h.Summary, h.Usage)
	if len(h.Examples) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, e := range h.Examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nflags (each also read from %s<FLAG>, e.g. -%s from %s):\n", EnvPrefix, firstFlag(fs), EnvName(firstFlag(fs)))
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

func firstFlag(fs *flag.FlagSet) string {
	name := ""
	fs.VisitAll(func(f *flag.Flag) {
		if name == "" {
			name = f.Name
		}
	})
	return name
}

// ParseEnv parses args into fs like Parse, after setting every flag whose MESHKAFKA_*
// variable is set (so the command line wins). With -h/-help/--help it prints h and returns
// flag.ErrHelp, which Main turns into exit status 0.
func ParseEnv(fs *flag.FlagSet, args []string, getenv Getenv, h Help) error {
	if IsHelp(args) {
		out := h.Out
		if out == nil {
			out = fs.Output()
		}
		PrintHelp(out, fs, h)
		return flag.ErrHelp
	}
	if err := ApplyEnv(fs, getenv); err != nil {
		return err
	}
	return Parse(fs, args)
}

// ApplyEnv sets every flag of fs whose MESHKAFKA_* variable is set and not empty.
func ApplyEnv(fs *flag.FlagSet, getenv Getenv) error {
	if getenv == nil {
		return nil
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil {
			return
		}
		name := EnvName(f.Name)
		if v := getenv(name); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, e)
			}
		}
	})
	return err
}

// HelpOr is stdout when args ask for help (help is wanted on standard output) and stderr
// otherwise (where flag errors go).
func HelpOr(args []string, stdout, stderr io.Writer) io.Writer {
	if IsHelp(args) {
		return stdout
	}
	return stderr
}

// Banner writes the start-up block every server prints after its first line: one "  name
// value" row each, names aligned, so a person sees at once what is running, where its data is,
// what it listens on and connects to, and what to run next.
func Banner(w io.Writer, rows ...[2]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		if r[1] == "" {
			continue
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
}
