// Package relayhttp dials a relay server the way iroh 0.28.1's relay client does: TCP (plus
// TLS for https/wss URLs), then
//
//	GET /relay HTTP/1.1
//	Host: <host>[:<port>]
//	Upgrade: iroh derp http
//	Meshkafka-Relay-Unpaced: 1
//
// and, on "101 Switching Protocols", a relay.Client over the raw stream (which sends the
// signed ClientInfo). The last header (relay.UnpacedHeader, our extension, ignored by iroh's
// server) tells our server that relay.Client needs no Ping/Pong window. The request path is always /relay whatever the URL's path; the Host
// header carries the port only when the URL does and drops a trailing dot from the host, as
// iroh does. http and ws URLs use plain TCP; that is what lets an unmodified iroh node use a
// local relay given as http://127.0.0.1:PORT.
package relayhttp
