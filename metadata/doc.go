// Package metadata owns every piece of Strata's cluster state and keeps it in
// etcd: registered bookies and serving nodes, ledger ids and ledger metadata,
// each topic's ledger list, cursors, topic ownership and namespace policies.
//
// Every update is a compare-and-swap on the key's revision (Version fields);
// a lost race is ErrBadVersion and the caller re-reads. The key layout is
// documented in keys.go, the only file that builds keys.
package metadata
