package tiering

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// tmpPrefix marks the temporary files of a DirStore's Put; List skips them
// and checkKey refuses keys that use it.
const tmpPrefix = ".tmp-"

// DirStore keeps objects as files under a root directory: key "a/b/c" is
// the file root/a/b/c. Put writes a temporary file in the target
// directory, fsyncs it, renames it over the key and fsyncs the directory
// (and the parent of each directory it created), so an object is either
// absent or whole, also across a crash.
type DirStore struct {
	root string
}

// NewDirStore returns a store rooted at dir, creating dir if needed.
func NewDirStore(dir string) (*DirStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty directory", ErrInvalidKey)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return &DirStore{root: abs}, nil
}

// Root returns the directory the store writes under.
func (s *DirStore) Root() string { return s.root }

func (s *DirStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put implements Store.
func (s *DirStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(s.path(key))
	if err := s.mkdirSynced(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return ioErr(err)
	}
	tmp := f.Name()
	if err := writeSynced(ctx, f, r, size); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, s.path(key)); err != nil {
		os.Remove(tmp)
		return ioErr(err)
	}
	return syncDirFunc(dir)
}

// writeSynced copies exactly size bytes from r to f, fsyncs and closes f.
func writeSynced(ctx context.Context, f *os.File, r io.Reader, size int64) error {
	n, err := io.Copy(f, ctxReader{ctx, io.LimitReader(r, size)})
	if err == nil && n != size {
		err = fmt.Errorf("%w: short body: %d of %d bytes", ErrInvalidRange, n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, ErrInvalidRange) && ctx.Err() == nil {
		return ioErr(err)
	}
	return err
}

// mkdirSynced creates dir and its missing parents under the root, and
// fsyncs the parent of each it created. The rename's directory is fsynced
// after it, but a directory that is new (a new topic's) is an entry in its
// own parent: lost in a crash, it would take the object with it, after
// the ledger's bookie copy had been deleted on the strength of it.
func (s *DirStore) mkdirSynced(dir string) error {
	var created []string
	for d := dir; d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return ioErr(err)
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ioErr(err)
	}
	for _, d := range created {
		if err := syncDirFunc(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// syncDirFunc is syncDir, replaced by a test that counts the fsyncs.
var syncDirFunc = syncDir

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return ioErr(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return ioErr(err)
	}
	return nil
}

// Get implements Store.
func (s *DirStore) Get(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, notFoundOr(key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, ioErr(err)
	}
	if length, err = checkRange(key, st.Size(), offset, length); err != nil {
		return nil, err
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset); err != nil && !(errors.Is(err, io.EOF) && length == 0) {
		return nil, ioErr(err)
	}
	return buf, nil
}

// Stat implements Store.
func (s *DirStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := checkKey(key); err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(s.path(key))
	if err != nil {
		return ObjectInfo{}, notFoundOr(key, err)
	}
	if st.IsDir() {
		return ObjectInfo{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return ObjectInfo{Key: key, Size: st.Size()}, nil
}

// removeStaleTemps removes the temporary files of Puts under prefix (a
// topic's directory) last modified before cutoff: a Put that crashed
// left them, and one still writing changes its file as it goes.
func (s *DirStore) removeStaleTemps(ctx context.Context, prefix string, cutoff time.Time) error {
	dir := s.path(strings.TrimSuffix(prefix, "/"))
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the topic has no directory, or a part went meanwhile
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed or removed meanwhile
		}
		if err != nil {
			return err
		}
		if info.ModTime().Before(cutoff) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return ioErr(err)
	}
	return err
}

// List implements Store.
func (s *DirStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var objs []ObjectInfo
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Skip directories that cannot hold a key with the prefix.
			if key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) || strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		objs = append(objs, ObjectInfo{Key: key, Size: info.Size()})
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ioErr(err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements Store.
func (s *DirStore) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ioErr(err)
	}
	return nil
}

func notFoundOr(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return ioErr(err)
}

func ioErr(err error) error { return fmt.Errorf("%w: %v", ErrUnavailable, err) }

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
