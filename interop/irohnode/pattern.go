package irohnode

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"sync"
)

// PatternBlockSize is the length of the repeating block of [Pattern].
const PatternBlockSize = 1 << 20

var patternBlock = sync.OnceValue(func() []byte {
	b := make([]byte, PatternBlockSize)
	x := uint32(0x9e3779b9)
	for i := 0; i < len(b); i += 4 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		binary.LittleEndian.PutUint32(b[i:], x)
	}
	return b
})

// PatternBlock returns the 1 MiB block that [Pattern] repeats (xorshift32 from 0x9E3779B9, each
// state as 4 little-endian bytes); the driver sends the same bytes. Do not modify it.
func PatternBlock() []byte { return patternBlock() }

// Pattern returns a reader of the first n bytes of the driver's payload pattern.
func Pattern(n int64) io.Reader { return &patternReader{rem: n} }

type patternReader struct {
	off int
	rem int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.rem <= 0 {
		return 0, io.EOF
	}
	blk := patternBlock()
	if int64(len(b)) > p.rem {
		b = b[:p.rem]
	}
	n := copy(b, blk[p.off:])
	p.off = (p.off + n) % len(blk)
	p.rem -= int64(n)
	return n, nil
}

// WriteTo writes the remaining pattern to w in block-sized writes.
func (p *patternReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	blk := patternBlock()
	for p.rem > 0 {
		end := len(blk)
		if int64(end-p.off) > p.rem {
			end = p.off + int(p.rem)
		}
		n, err := w.Write(blk[p.off:end])
		total += int64(n)
		p.rem -= int64(n)
		p.off = (p.off + n) % len(blk)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// PatternSHA256 returns the hex sha256 of the first n pattern bytes.
func PatternSHA256(n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, Pattern(n))
	return hex.EncodeToString(h.Sum(nil))
}
