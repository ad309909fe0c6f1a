package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Segment is one journal file. WriteAt and Sync are called by one writer at a
// time; ReadAt may be called concurrently with them.
type Segment struct {
	ID   uint32
	f    *os.File
	path string
}

// Name returns the file name of segment id.
func Name(id uint32) string { return fmt.Sprintf("%08x.log", id) }

// List returns the ids of the segments in dir, ascending.
func List(dir string) ([]uint32, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".log")
		if !ok || len(name) != 8 {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 32)
		if err != nil || id == 0 {
			continue
		}
		out = append(out, uint32(id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Create makes a new segment preallocated to size bytes and fsyncs the
// directory so the file survives a crash. On failure the file is removed,
// so that the id can be created again.
func Create(dir string, id uint32, size int64) (_ *Segment, err error) {
	p := filepath.Join(dir, Name(id))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(p)
		}
	}()
	if size > 0 {
		// Best effort: a file system without fallocate still works, it only
		// pays for growing the file on each group.
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return nil, fmt.Errorf("journal: preallocate %s: %w", p, err)
		}
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := SyncDir(dir); err != nil {
		return nil, err
	}
	return &Segment{ID: id, f: f, path: p}, nil
}

// Open opens an existing segment for reading and truncation.
func Open(dir string, id uint32) (*Segment, error) {
	p := filepath.Join(dir, Name(id))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return &Segment{ID: id, f: f, path: p}, nil
}

// ReadAll reads the whole file (for the recovery scan).
func (s *Segment) ReadAll() ([]byte, error) { return os.ReadFile(s.path) }

// Size returns the file's size (its preallocated size while it is written).
func (s *Segment) Size() (int64, error) {
	fi, err := s.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Empty reports whether the file holds only zeros: no record was ever
// written to it (or none reached the disk).
func (s *Segment) Empty() (bool, error) {
	buf := make([]byte, 1<<20)
	for off := int64(0); ; {
		n, err := s.f.ReadAt(buf, off)
		if !allZero(buf[:n]) {
			return false, nil
		}
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		off += int64(n)
	}
}

// ReadAt reads len(p) bytes at off.
func (s *Segment) ReadAt(p []byte, off int64) error {
	_, err := s.f.ReadAt(p, off)
	return err
}

// WriteAt writes p at off with one system call (or a few for huge p).
func (s *Segment) WriteAt(p []byte, off int64) error {
	_, err := s.f.WriteAt(p, off)
	return err
}

// Sync makes every write so far durable (fdatasync). It returns how long
// it took, so callers can warn about slow disks.
func (s *Segment) Sync() (time.Duration, error) {
	start := time.Now()
	err := unix.Fdatasync(int(s.f.Fd()))
	return time.Since(start), err
}

// Truncate cuts the file at off and makes that durable: used to drop a torn
// tail. Preallocated space after off is given back.
func (s *Segment) Truncate(off int64) error {
	if err := s.f.Truncate(off); err != nil {
		return err
	}
	return s.f.Sync()
}

// Close closes the file.
func (s *Segment) Close() error { return s.f.Close() }

// Remove closes and deletes the segment file and fsyncs dir.
func (s *Segment) Remove(dir string) error {
	s.f.Close()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that file creations, renames and removals
// in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
