// Package coord is the thin shell of the share-group coordinator: one mutex around the
// I/O-free share.Machine, and Store, the fsynced log that makes the Machine's Records
// durable before an operation is answered (see package broker/share for the semantics and
// the durability decision, Store for the file layout). It starts no goroutine: every call
// first lets the Machine expire locks and members at the clock's current time.
package coord
