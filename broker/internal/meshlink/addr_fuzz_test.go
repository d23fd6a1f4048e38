package meshlink_test

import (
	"testing"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink"
	"github.com/meshkafka/meshkafka/broker/internal/meshlink/meshlinktest"
)

// FuzzDecodeAddr: DecodeAddr never panics, its errors wrap ErrBadAddr, and what it accepts
// encodes back to the same bytes.
func FuzzDecodeAddr(f *testing.F) { meshlinktest.FuzzAddr(f, meshlink.EncodeAddr, meshlink.DecodeAddr) }
