package acceptloop

import (
	"context"
	"net"
	"sync"
)

// Serve accepts connections on ln and runs handle for each in its own goroutine, closing the
// connection when handle returns, until ctx ends (Serve then closes ln) or Accept fails. It
// returns once every handle has returned: nil if ctx ended, else Accept's error (ln is then
// left to the caller).
func Serve(ctx context.Context, ln net.Listener, handle func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer c.Close()
			handle(c)
		})
	}
}
