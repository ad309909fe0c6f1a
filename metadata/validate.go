package metadata

import (
	"strings"

	"github.com/strata-mq/strata/internal/errcode"
	"github.com/strata-mq/strata/internal/topic"
)

// maxIDBytes bounds node, bookie and subscription ids.
const maxIDBytes = 256

// checkTopic accepts only a full, valid tenant/namespace/name, so that every
// topic has exactly one key.
func checkTopic(name string) error {
	n, err := topic.Parse(name)
	if err != nil {
		return err
	}
	if n.String() != name {
		return errcode.New(errcode.InvalidTopicName, "metadata: topic %q is not in full tenant/namespace/name form", name)
	}
	return nil
}

// checkNamespace accepts a valid tenant/namespace.
func checkNamespace(ns string) error {
	_, _, err := topic.ParseNamespace(ns)
	return err
}

// checkID accepts a non-empty id without '/' or control characters, used as
// the last element of a key.
func checkID(kind, id string, code errcode.Code) error {
	if id == "" || len(id) > maxIDBytes {
		return errcode.New(code, "metadata: %s id %q must be 1 to %d bytes", kind, id, maxIDBytes)
	}
	if strings.ContainsRune(id, '/') || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errcode.New(code, "metadata: %s id %q contains '/' or a control character", kind, id)
	}
	return nil
}
