// Package topic parses and validates topic names, shared by the client and
// the serving tier so both reject the same names with the same error.
//
// A full name is tenant/namespace/name. A bare name means public/default/name.
// A partition of a partitioned topic is name-partition-i. Each part is 1 to
// 128 characters of [A-Za-z0-9._-] (and ':' is refused: it separates ids in
// message ids and object keys).
package topic
