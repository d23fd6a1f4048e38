// Package acceptloop serves the connections a net.Listener accepts, each in its own
// goroutine, until a context ends: the loop the mesh CLI's TCP forwarder and kafkapipe's
// Kafka proxy share. It is I/O only through the listener it is given.
package acceptloop
