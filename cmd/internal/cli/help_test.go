package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseEnvPrecedence(t *testing.T) {
	env := map[string]string{"MESHKAFKA_DATA": "/from/env", "MESHKAFKA_PARTITIONS": "8", "RAFKA_DATA_DIR": "/from/alias"}
	getenv := func(k string) string { return env[k] }
	newFS := func() (*flag.FlagSet, *string, *int) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var data string
		var parts int
		StringVar(fs, &data, "data", getenv, "RAFKA_DATA_DIR", "./data", "data directory")
		PartitionsVar(fs, &parts)
		return fs, &data, &parts
	}
	fs, data, parts := newFS()
	if err := ParseEnv(fs, nil, getenv, Help{}); err != nil {
		t.Fatal(err)
	}
	if *data != "/from/env" || *parts != 8 {
		t.Fatalf("env: data %q partitions %d, want MESHKAFKA_* over the RAFKA_* alias", *data, *parts)
	}
	fs, data, parts = newFS()
	if err := ParseEnv(fs, []string{"-data", "/from/flag"}, getenv, Help{}); err != nil {
		t.Fatal(err)
	}
	if *data != "/from/flag" || *parts != 8 {
		t.Fatalf("flag: data %q partitions %d, want the command line to win", *data, *parts)
	}
	delete(env, "MESHKAFKA_DATA")
	fs, data, _ = newFS()
	if err := ParseEnv(fs, nil, getenv, Help{}); err != nil {
		t.Fatal(err)
	}
	if *data != "/from/alias" {
		t.Fatalf("alias: data %q, want the RAFKA_* alias when MESHKAFKA_* is unset", *data)
	}
	env["MESHKAFKA_PARTITIONS"] = "many"
	fs, _, _ = newFS()
	err := ParseEnv(fs, nil, getenv, Help{})
	if err == nil || !strings.Contains(err.Error(), "MESHKAFKA_PARTITIONS") {
		t.Fatalf("bad env value: %v, want an error naming the variable", err)
	}
}

func TestParseEnvHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-data", "x", "-help"}} {
		fs := flag.NewFlagSet("prog", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("data", "./data", "data directory")
		var out bytes.Buffer
		err := ParseEnv(fs, args, nil, Help{Summary: "does one thing", Usage: "prog [flags]", Examples: []string{"prog -data d"}, Out: &out})
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%q: err %v, want flag.ErrHelp (exit 0)", args, err)
		}
		for _, want := range []string{"prog: does one thing", "usage: prog [flags]", "prog -data d", "-data", "MESHKAFKA_DATA"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("%q: help lacks %q:\n%s", args, want, out.String())
			}
		}
	}
	if IsHelp([]string{"--", "-h"}) {
		t.Fatal("-h after -- is an argument, not a help request")
	}
}
