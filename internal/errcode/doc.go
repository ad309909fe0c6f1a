// Package errcode is the one catalogue of Strata's stable wire error codes.
//
// Every error that crosses a process boundary (client ↔ serving node, serving
// node ↔ bookie) carries a numeric Code from this catalogue. Codes are stable:
// a number, once published, keeps its meaning forever and is never reused.
// Each code says whether the operation may be retried as-is (Retriable).
//
// Translation to and from gRPC status happens in exactly one place, grpc.go:
// servers return errors through ToStatus (usually via the interceptors), and
// clients classify what they receive with FromError. Nothing else in the
// project makes up error strings at the wire boundary or matches on them.
//
// Packages keep their own sentinels (bookie.ErrFenced, client.ErrTopicNotFound,
// ...) and make them comparable to a code with errors.Is: an *Error of the
// same code matches the sentinel (see Error.Is).
package errcode
