package ledger

import (
	"github.com/strata-mq/strata/internal/ids"
	"github.com/strata-mq/strata/metadata"
)

// The outputs of the state machines: requests their driver sends. The
// ledger id is the machine's own, so it is not repeated here.

// addOp asks the driver to send one add to one bookie.
type addOp struct {
	Bookie   string
	Entry    ids.EntryID
	LAC      ids.EntryID
	Payload  []byte
	Recovery bool
}

// readOp asks the driver to read one entry from one bookie.
type readOp struct {
	Bookie string
	Entry  ids.EntryID
}

// metaOp asks the driver for one metadata operation: a read of the ledger
// (Put == nil) or a compare-and-swap of Put (on Put.Version). The answer
// comes back through the machine's metaResult.
type metaOp struct {
	Put *metadata.Ledger
	// Close marks the put that closes the ledger: the driver applies the
	// caller's annotate function to it before the CAS.
	Close bool
}

// completion is the outcome of one append, delivered in append order.
type completion struct {
	Entry ids.EntryID
	Err   error
}
