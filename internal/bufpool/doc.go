// Package bufpool reuses large byte buffers in power-of-two size classes, so the paths that
// move record data (the broker's log reads, the mesh carrier's frame payloads) do not allocate,
// zero and garbage-collect a buffer of the data's size per request.
package bufpool
