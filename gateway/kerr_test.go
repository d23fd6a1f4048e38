package gateway_test

import "github.com/twmb/franz-go/pkg/kerr"

func kerrFor(c int16) error { return kerr.ErrorForCode(c) }
