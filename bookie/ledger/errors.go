package ledger

import (
	"errors"

	"github.com/strata-mq/strata/internal/errcode"
)

// Errors of the writer.
var (
	// ErrFenced: the ledger was fenced by a recovery (another owner); the
	// writer must stop and the caller should drop the topic. The fate of the
	// entries that failed with it is unknown: they may be in the recovered
	// ledger or not.
	ErrFenced = errcode.New(errcode.Fenced, "ledger: fenced")
	// ErrLedgerClosed: the writer was closed (or is closing).
	ErrLedgerClosed = errcode.New(errcode.LedgerClosed, "ledger: closed")
	// ErrNotEnoughBookies: fewer live bookies than the ensemble needs.
	ErrNotEnoughBookies = errcode.New(errcode.NotEnoughBookies, "ledger: not enough bookies")
)

// Errors of the reader.
var (
	// ErrEntryNotFound: no bookie of the entry's write set has it.
	ErrEntryNotFound = errcode.New(errcode.EntryNotFound, "ledger: entry not found")
	// ErrLedgerNotFound: the ledger's metadata does not exist.
	ErrLedgerNotFound = errcode.New(errcode.LedgerNotFound, "ledger: ledger not found")
	// ErrEntryDamaged: every bookie of an entry's write set holds it
	// damaged (its CRC does not match): the entry is lost, not late.
	ErrEntryDamaged = errcode.New(errcode.Corruption, "ledger: entry damaged on every bookie")
	// ErrInvalidArgument: bad options or a bad entry range; nothing changed.
	ErrInvalidArgument = errcode.New(errcode.InvalidArgument, "ledger: invalid argument")
	// ErrClientClosed: the Client was closed.
	ErrClientClosed = errcode.New(errcode.Closed, "ledger: client closed")
)

// IsFenced reports whether err says the ledger was fenced (or closed) under
// the writer.
func IsFenced(err error) bool {
	return errors.Is(err, ErrFenced)
}

// isFencedCode reports whether a bookie's answer means the writer lost the
// ledger: FENCED, or LEDGER_CLOSED.
func isFencedCode(err error) bool {
	c := errcode.CodeOf(err)
	return err != nil && (c == errcode.Fenced || c == errcode.LedgerClosed)
}

// isNoEntry reports whether a read answer means "this bookie does not have
// the entry" (as opposed to "could not ask").
func isNoEntry(err error) bool {
	c := errcode.CodeOf(err)
	return err != nil && (c == errcode.EntryNotFound || c == errcode.LedgerNotFound)
}
