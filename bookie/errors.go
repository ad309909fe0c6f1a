package bookie

import (
	"github.com/strata-mq/strata/bookie/journal"
	"github.com/strata-mq/strata/internal/errcode"
)

// Errors. Each carries an errcode code, so errors.Is matches them against
// errors decoded from the wire with errcode.FromError.
var (
	// ErrFenced: an add (not flagged recovery) to a fenced ledger.
	ErrFenced = errcode.New(errcode.Fenced, "bookie: ledger is fenced")
	// ErrLedgerNotFound: the ledger is unknown to this bookie or deleted.
	ErrLedgerNotFound = errcode.New(errcode.LedgerNotFound, "bookie: no such ledger")
	// ErrEntryNotFound: the ledger is known but the entry is not stored.
	ErrEntryNotFound = errcode.New(errcode.EntryNotFound, "bookie: no such entry")
	// ErrCorruption: a checksum mismatch on disk; the bytes are never returned.
	ErrCorruption = journal.ErrChecksum
	// ErrTooLarge: an entry over Config.MaxEntryBytes.
	ErrTooLarge = errcode.New(errcode.MessageTooLarge, "bookie: entry too large")
	// ErrTooManyInFlight: the stream's in-flight bytes limit was reached.
	ErrTooManyInFlight = errcode.New(errcode.TooManyInFlight, "bookie: too many bytes in flight on this stream")
	// ErrInvalidArgument: a malformed request (ledger 0, negative entry, ...).
	ErrInvalidArgument = errcode.New(errcode.InvalidArgument, "bookie: invalid request")
	// ErrClosed: the bookie is closed.
	ErrClosed = errcode.New(errcode.Closed, "bookie: closed")
	// ErrReadOnly: the bookie refuses new adds, its disk being over
	// Config.DiskUsageThreshold or a journal segment not made (diskfull.go).
	ErrReadOnly = errcode.New(errcode.BookieReadOnly, "bookie: read-only")
	// ErrShuttingDown: the bookie is shutting down (StopAdds): an Add stream ends
	// with it once it has answered the adds it received, so that writers
	// move to another bookie.
	ErrShuttingDown = errcode.New(errcode.Unavailable, "bookie: shutting down")
	// ErrUnavailable: the journal failed (an fsync error); the bookie no
	// longer accepts writes and must be restarted.
	ErrUnavailable = errcode.New(errcode.Unavailable, "bookie: journal failed")
)
