package tiering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/strata-mq/strata/internal/errcode"
)

// Store is the narrow interface to an object store: S3-compatible
// (S3Store) or a local directory (DirStore). Keys are slash-separated paths
// relative to the store's own prefix. Every call takes a context; cancelling
// it abandons the request and returns the context's error.
type Store interface {
	// Put writes the object key with the size bytes read from r, atomically:
	// a reader sees either the previous object or the whole new one. Large
	// objects are uploaded in parts.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns bytes [offset, offset+length) of the object; length < 0
	// reads to the end. ErrNotFound if the object does not exist,
	// ErrInvalidRange if the range does not lie inside the object.
	Get(ctx context.Context, key string, offset, length int64) ([]byte, error)
	// Stat returns the object's size. ErrNotFound if it does not exist.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order, and stops at fn's first error, which it returns.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key  string
	Size int64
}

// Errors of object-store operations. They carry errcode codes, so
// errcode.IsRetriable(err) says whether to retry, and they match with
// errors.Is after wrapping.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errcode.New(errcode.EntryNotFound, "tiering: object not found")
	// ErrUnavailable: the store could not be reached or failed; retriable.
	ErrUnavailable = errcode.New(errcode.Unavailable, "tiering: object store unavailable")
	// ErrCorruption: an object's bytes do not match their checksum or index.
	ErrCorruption = errcode.New(errcode.Corruption, "tiering: corrupt object")
	// ErrInvalidRange: a read outside the object's bytes.
	ErrInvalidRange = errcode.New(errcode.InvalidArgument, "tiering: range outside object")
	// ErrInvalidKey: a key that is empty, absolute, has "." or ".." parts,
	// or a file name a DirStore keeps for its temporary files.
	ErrInvalidKey = errcode.New(errcode.InvalidArgument, "tiering: invalid object key")
	// ErrDenied: the store refused the credentials or the request.
	ErrDenied = errcode.New(errcode.Internal, "tiering: object store access denied")
)

// IsNotFound reports whether err says an object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsCorruption reports whether err says stored bytes are corrupt.
func IsCorruption(err error) bool { return errcode.CodeOf(err) == errcode.Corruption }

// maxKeyLen bounds object keys (S3's own limit is 1024 bytes).
const maxKeyLen = 1024

// checkKey rejects keys that could escape a directory store or that S3
// would treat differently from a directory store.
func checkKey(key string) error {
	if key == "" || len(key) > maxKeyLen || strings.HasPrefix(key, "/") ||
		strings.HasSuffix(key, "/") || strings.ContainsAny(key, "\x00\\") {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	parts := strings.Split(key, "/")
	for _, part := range parts {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
	}
	// Only a file name can be taken for a DirStore's temporary file; a
	// directory on the way may be so named (".tmp-x" is a valid topic).
	if strings.HasPrefix(parts[len(parts)-1], tmpPrefix) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return nil
}

// checkRange validates a requested range against an object's size and
// returns the resolved length.
func checkRange(key string, size, offset, length int64) (int64, error) {
	if length < 0 {
		length = size - offset
	}
	if offset < 0 || length < 0 || offset > size || length > size-offset {
		return 0, fmt.Errorf("%w: %s [%d,+%d) of %d bytes", ErrInvalidRange, key, offset, length, size)
	}
	return length, nil
}
