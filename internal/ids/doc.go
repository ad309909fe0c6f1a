// Package ids holds the identifier types that cross tiers: ledger and entry
// ids (bookie, serving, tiering, metadata) and message positions.
//
// An EntryID is signed because -1 (NoEntry) is meaningful: the LAC of a ledger
// with no confirmed entry, or the last entry of an empty closed ledger.
package ids
